"""Deterministic fake encoders: small, fast, and with real similarity structure."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np
from PIL import Image

from asif_platform.encoders.base import EncoderSpec, ImageEncoder, TextEncoder
from asif_platform.errors import ConfigError

__all__ = ["FakeImageEncoder", "FakeTextEncoder", "fake_loader"]


class FakeImageEncoder(ImageEncoder):
    """Mean-centred 4x4 thumbnail: similar pictures get similar vectors."""

    def __init__(self, side: int = 4) -> None:
        self.side = side
        self.spec = EncoderSpec("image", "fake-thumbnail", f"fake:image-{side}", 3 * side * side,
                                {"resize": side})

    def encode(self, images: Sequence[Image.Image], *, batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        rows = []
        for image in images:
            small = image.convert("RGB").resize((self.side, self.side), Image.BILINEAR)
            row = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
            row = row - row.mean() + 1e-3 * np.arange(row.size, dtype=np.float32)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dim)


class FakeTextEncoder(TextEncoder):
    """Hashed bag of words."""

    def __init__(self, dim: int = 64) -> None:
        self.spec = EncoderSpec("text", "fake-bow", f"fake:text-{dim}", dim, {})

    def encode(self, texts: Sequence[str], *, batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
            out[row, row % self.dim] += 1e-3
            out[row] /= np.linalg.norm(out[row])
        return out


def fake_loader(identifier: str, modality: str) -> ImageEncoder | TextEncoder:
    if identifier == "fake:image":
        return FakeImageEncoder()
    if identifier == "fake:image-8":
        return FakeImageEncoder(side=8)
    if identifier == "fake:text":
        return FakeTextEncoder()
    raise ConfigError(f"unknown fake encoder {identifier!r}")
