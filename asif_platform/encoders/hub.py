"""Any transformers model, by Hugging Face hub id or local directory, as an encoder.

Text models are mean-pooled over their tokens (the sentence-transformers recipe).
Image models use their pooled output when they have one, otherwise the mean of the
last hidden state; preprocessing follows the model's ``preprocessor_config.json``
(size, crop, mean, std), done with PIL and numpy.

The spec records a digest of the model's files, so two different checkpoints saved
under the same name never share a fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from asif_platform.encoders.base import (
    BatchedImageEncoder,
    EncoderSpec,
    TextEncoder,
    l2_normalise,
)
from asif_platform.encoders.preprocessing import center_crop_array
from asif_platform.errors import EncoderError

__all__ = ["HFImageEncoder", "HFTextEncoder", "resolve_model"]

logger = logging.getLogger(__name__)

# Files that determine a model's outputs; their bytes go into the fingerprint.
_DIGESTED_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model")


def resolve_model(identifier: str) -> tuple[Path, str]:
    """Find a model's directory: a local path, or a hub id from the local hub cache.

    Returns:
        The directory and the source string for the spec (``local:`` or ``hf:``).

    Raises:
        EncoderError: Neither a directory nor a hub id that can be fetched.
    """
    path = Path(identifier).expanduser()
    if path.is_dir():
        return path.resolve(), f"local:{path.resolve()}"
    try:
        from huggingface_hub import snapshot_download

        snapshot = Path(snapshot_download(repo_id=identifier))
    except Exception as error:
        raise EncoderError(
            f"cannot load model {identifier!r}: it is not a local directory and the "
            f"Hugging Face hub did not provide it ({type(error).__name__}); pass a "
            "directory saved with save_pretrained, or connect to the hub"
        ) from error
    return snapshot, f"hf:{identifier}@{snapshot.name}"


@cache
def _directory_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(directory.iterdir()):
        if file.is_file() and file.suffix in _DIGESTED_SUFFIXES:
            digest.update(file.name.encode() + b"\0")
            with open(file, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()


def _load(loader: Any, directory: Path, identifier: str) -> Any:
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    try:
        return loader.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as error:
        raise EncoderError(f"cannot load model {identifier!r} from {directory}: {error}") from error


def _set_threads(threads: int) -> None:
    if threads:
        torch.set_num_threads(threads)


class HFTextEncoder(TextEncoder):
    """A transformers text model, mean-pooled over tokens, L2-normalised.

    Args:
        identifier: Hub id or local directory.
        name: Name for the spec; defaults to the identifier.
        source: Source for the spec; defaults to ``local:<dir>`` or ``hf:<id>@<rev>``.
        max_tokens: Truncation length; defaults to the tokenizer's limit (at most 512).
        threads: CPU threads; 0 uses every core.
    """

    def __init__(
        self,
        identifier: str,
        *,
        name: str | None = None,
        source: str | None = None,
        max_tokens: int | None = None,
        threads: int = 0,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        _set_threads(threads)
        directory, resolved_source = resolve_model(str(identifier))
        self.tokenizer = _load(AutoTokenizer, directory, identifier)
        self.model = _load(AutoModel, directory, identifier).eval()
        limit = min(int(self.tokenizer.model_max_length), 512)
        self.max_tokens = max_tokens or limit
        dim = int(self.model.config.hidden_size)
        self.spec = EncoderSpec(
            modality="text",
            name=name or str(identifier),
            source=source or resolved_source,
            dim=dim,
            preprocessing={
                "pooling": "mean",
                "max_tokens": self.max_tokens,
                "files_sha256": _directory_digest(directory),
            },
        )

    def encode(
        self,
        texts: Sequence[str],
        *,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise EncoderError("cannot encode an empty caption; give non-empty text")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Similar lengths share a batch, so little compute goes to padding.
        order = sorted(range(len(texts)), key=lambda row: len(texts[row]))
        starts = range(0, len(order), batch_size)
        for start in tqdm(starts, desc="captions", unit="batch", disable=not progress):
            rows = order[start : start + batch_size]
            tokens = self.tokenizer(
                [texts[row] for row in rows], padding=True, truncation=True,
                max_length=self.max_tokens, return_tensors="pt",
            )
            with torch.inference_mode():
                hidden = self.model(**tokens).last_hidden_state
            mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            out[rows] = l2_normalise(pooled.numpy())
        return out


class HFImageEncoder(BatchedImageEncoder):
    """A transformers vision model, pooled, L2-normalised.

    Args:
        identifier: Hub id or local directory.
        threads: CPU threads; 0 uses every core.
    """

    def __init__(self, identifier: str, *, threads: int = 0) -> None:
        from transformers import AutoModel

        _set_threads(threads)
        directory, source = resolve_model(str(identifier))
        self.model = _load(AutoModel, directory, identifier).eval()
        self.preprocessing = self._preprocessing(directory)
        probe = Image.new("RGB", (self.preprocessing["center_crop"],) * 2)
        dim = int(self.forward(self.preprocess(probe)[None]).shape[1])
        self.spec = EncoderSpec(
            modality="image",
            name=str(identifier),
            source=source,
            dim=dim,
            preprocessing={**self.preprocessing, "files_sha256": _directory_digest(directory)},
        )

    def _preprocessing(self, directory: Path) -> dict[str, Any]:
        config_file = directory / "preprocessor_config.json"
        processor = json.loads(config_file.read_text()) if config_file.exists() else {}
        image_size = getattr(self.model.config, "image_size", 224)
        size = processor.get("size", image_size)
        crop = processor.get("crop_size", size)

        def side(value: Any) -> int:
            if isinstance(value, dict):
                return int(value.get("shortest_edge") or value.get("height"))
            return int(value)

        return {
            "resize_shorter": side(size),
            "center_crop": side(crop),
            "interpolation": "bilinear",
            "mean": list(processor.get("image_mean", [0.5, 0.5, 0.5])),
            "std": list(processor.get("image_std", [0.5, 0.5, 0.5])),
            "pooling": "pooler_output, else mean of last_hidden_state",
        }

    def preprocess(self, image: Image.Image) -> np.ndarray:
        p = self.preprocessing
        return center_crop_array(image.convert("RGB"), resize=p["resize_shorter"],
                                 crop=p["center_crop"], mean=p["mean"], std=p["std"])

    def forward(self, pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            output = self.model(pixel_values=torch.from_numpy(pixels))
        pooled = getattr(output, "pooler_output", None)
        if pooled is None:
            hidden = output.last_hidden_state
            pooled = hidden.mean(dim=1) if hidden.dim() == 3 else hidden.mean(dim=(2, 3))
        return l2_normalise(pooled.reshape(pooled.shape[0], -1).numpy())
