"""Encoder identifiers and a per-process cache of loaded encoders.

Identifiers:
    ``bundled:efficientnet-lite0``  EfficientNet-Lite0, weights from its package.
    ``bundled:all-minilm-l6-v2``    all-MiniLM-L6-v2, weights from its package.
    ``hf:<id or path>``             any transformers model (also accepted without
                                    the prefix).
"""

from __future__ import annotations

from functools import lru_cache

from asif_platform.encoders.base import ImageEncoder, TextEncoder
from asif_platform.errors import ConfigError

__all__ = ["BUNDLED_IMAGE", "BUNDLED_TEXT", "load_image_encoder", "load_text_encoder"]

BUNDLED_IMAGE = "bundled:efficientnet-lite0"
BUNDLED_TEXT = "bundled:all-minilm-l6-v2"


def _hub_id(identifier: str) -> str:
    if identifier in (BUNDLED_IMAGE, BUNDLED_TEXT):
        kind = "an image" if identifier == BUNDLED_IMAGE else "a text"
        raise ConfigError(f"{identifier} is {kind} encoder; give it as the "
                          f"{'image' if identifier == BUNDLED_IMAGE else 'text'} encoder")
    if identifier.startswith("bundled:"):
        raise ConfigError(
            f"unknown bundled encoder {identifier!r}; the bundled encoders are "
            f"{BUNDLED_IMAGE} (images) and {BUNDLED_TEXT} (text)"
        )
    hub_id = identifier.removeprefix("hf:")
    if not hub_id:
        raise ConfigError("empty encoder identifier; give bundled:<name>, hf:<id> or a path")
    return hub_id


@lru_cache(maxsize=4)
def load_image_encoder(identifier: str, *, threads: int = 0) -> ImageEncoder:
    """Load (once per process) the image encoder an identifier names."""
    if identifier == BUNDLED_IMAGE:
        from asif_platform.encoders.bundled import EfficientNetLite0Encoder

        return EfficientNetLite0Encoder(threads=threads)
    from asif_platform.encoders.hub import HFImageEncoder

    return HFImageEncoder(_hub_id(identifier), threads=threads)


@lru_cache(maxsize=4)
def load_text_encoder(identifier: str, *, threads: int = 0) -> TextEncoder:
    """Load (once per process) the text encoder an identifier names."""
    if identifier == BUNDLED_TEXT:
        from asif_platform.encoders.bundled import minilm_text_encoder

        return minilm_text_encoder(threads=threads)
    from asif_platform.encoders.hub import HFTextEncoder

    return HFTextEncoder(_hub_id(identifier), threads=threads)
