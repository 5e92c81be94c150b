"""The unit every reader yields: one image-caption pair and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["PairRecord"]


@dataclass(frozen=True)
class PairRecord:
    """One image-caption pair read from a source dataset.

    Attributes:
        image: Path of the image file.
        caption: The caption text, as read (readers strip surrounding whitespace).
        source_dataset: Name of the dataset the pair comes from, e.g. ``"flickr8k"``.
        source_record_id: The pair's id in that dataset, e.g. ``"1000268201_693b08cb0e.jpg#0"``.
        extra: Further per-record columns (license, creator, ...), kept as given.
    """

    image: Path
    caption: str
    source_dataset: str
    source_record_id: str
    extra: dict[str, Any] = field(default_factory=dict)
