"""The encoder interface and the spec that fingerprints an encoder."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image
from tqdm import tqdm

__all__ = ["BatchedImageEncoder", "Encoder", "EncoderSpec", "ImageEncoder", "Modality", "TextEncoder", "l2_normalise"]

Modality = Literal["image", "text"]


@dataclass(frozen=True)
class EncoderSpec:
    """Everything that determines an encoder's output vectors.

    Two encoders with the same spec produce the same vectors for the same input, so
    the spec's fingerprint is stored with every collection and every anchor, and a
    collection refuses vectors carrying any other fingerprint.

    Attributes:
        modality: ``"image"`` or ``"text"``.
        name: Short human name, e.g. ``"efficientnet-lite0"``.
        source: Where the weights come from, with a scheme prefix
            (``bundled:``, ``hf:``, ``local:``).
        dim: Output size.
        preprocessing: Every preprocessing choice (resize, crop, normalisation,
            pooling, max tokens, weights digest...), JSON-serialisable.
    """

    modality: Modality
    name: str
    source: str
    dim: int
    preprocessing: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "modality": self.modality,
            "name": self.name,
            "source": self.source,
            "dim": self.dim,
            "preprocessing": dict(self.preprocessing),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EncoderSpec:
        return cls(
            modality=data["modality"],
            name=data["name"],
            source=data["source"],
            dim=int(data["dim"]),
            preprocessing=dict(data.get("preprocessing", {})),
        )

    @property
    def fingerprint(self) -> str:
        """sha256 of the spec's canonical JSON, in hex."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class Encoder(ABC):
    """A frozen model that maps a batch of inputs to L2-normalised float32 rows."""

    spec: EncoderSpec

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def fingerprint(self) -> str:
        return self.spec.fingerprint


class ImageEncoder(Encoder):
    """Encodes decoded RGB images."""

    @abstractmethod
    def encode(
        self,
        images: Sequence[Image.Image],
        *,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        """Encode images.

        Args:
            images: Decoded images (any mode; converted to RGB).
            batch_size: Images per forward pass. Defaults to 64.
            progress: Show a progress bar. Defaults to False.

        Returns:
            float32 array of shape (len(images), dim), each row of unit L2 norm.
        """


class BatchedImageEncoder(ImageEncoder):
    """An image encoder made of a per-image preprocessing and a batched forward pass."""

    @abstractmethod
    def preprocess(self, image: Image.Image) -> np.ndarray:
        """One image as the model's input array, e.g. (3, 224, 224) float32."""

    @abstractmethod
    def forward(self, pixels: np.ndarray) -> np.ndarray:
        """(n, *input shape) preprocessed images -> (n, dim) unit float32 rows."""

    def encode(
        self,
        images: Sequence[Image.Image],
        *,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        out = np.empty((len(images), self.dim), dtype=np.float32)
        starts = range(0, len(images), batch_size)
        for start in tqdm(starts, desc="images", unit="batch", disable=not progress):
            batch = images[start : start + batch_size]
            pixels = np.stack([self.preprocess(image) for image in batch])
            out[start : start + len(batch)] = self.forward(pixels)
        return out


class TextEncoder(Encoder):
    """Encodes captions."""

    @abstractmethod
    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        """Encode captions.

        Args:
            texts: Non-empty captions.
            batch_size: Captions per forward pass. Defaults to 64.
            progress: Show a progress bar. Defaults to False.

        Returns:
            float32 array of shape (len(texts), dim), each row of unit L2 norm.
        """


def l2_normalise(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (all-zero rows stay zero)."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.maximum(norms, 1e-12)
