"""ASIF Platform: a CLIP-like model made of anchor image-caption pairs in Qdrant."""

from __future__ import annotations

__version__ = "0.1.0"
