"""An on-disk cache of text-side search results, shared by every process.

The candidate captions of a classification ("a photo of a {label}.") are the same
from call to call, so their top-k anchors are looked up in Qdrant once per
collection revision, filter, labels, templates, k and search parameters, and kept
here as anchor ids and similarities (no caption text). Any change that can alter
them (ingest, deletion, consent change, policy change) moves the collection's
revision or filter and so the key; deletions also clear the collection's folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from asif_platform.store.base import SearchResult

__all__ = ["TextResultCache", "clear_text_cache", "text_cache_dir"]

logger = logging.getLogger(__name__)


def text_cache_dir(home: Path, collection: str) -> Path:
    """Where the text-side results of ``collection`` are cached."""
    return home / "cache" / "text" / collection


def clear_text_cache(home: Path, collection: str) -> None:
    """Drop every cached result of ``collection`` (after a deletion)."""
    shutil.rmtree(text_cache_dir(home, collection), ignore_errors=True)


class TextResultCache:
    """Search results stored as ``<sha256 of the key>.npz`` files.

    Args:
        folder: The collection's cache folder; created on first save.
        salt: Mixed into every key: what identifies the collection and its text
            encoder, so a recreated collection never reads an old file.
    """

    def __init__(self, folder: Path, salt: Any) -> None:
        self.folder = folder
        self.salt = salt

    def _path(self, key: tuple[Any, ...]) -> Path:
        digest = hashlib.sha256(repr((self.salt, key)).encode()).hexdigest()
        return self.folder / f"{digest}.npz"

    def load(self, key: tuple[Any, ...]) -> list[SearchResult] | None:
        path = self._path(key)
        try:
            with np.load(path) as data:
                ids, scores, lengths = data["ids"], data["scores"], data["lengths"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError):  # a damaged file is a miss
            logger.warning("ignoring unreadable text cache file %s", path.name)
            return None
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        logger.debug("text cache hit %s", path.name)
        return [
            SearchResult(ids=ids[start:stop], scores=scores[start:stop])
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
        ]

    def save(self, key: tuple[Any, ...], results: Sequence[SearchResult]) -> None:
        path = self._path(key)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader sees a whole file or none.
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "wb") as out:
                np.savez(
                    out,
                    ids=np.concatenate([r.ids for r in results]).astype(np.int64),
                    scores=np.concatenate([r.scores for r in results]).astype(np.float32),
                    lengths=np.array([len(r.ids) for r in results], dtype=np.int64),
                )
            os.replace(temporary, path)
        except OSError as exc:  # a cache that cannot be written only costs speed
            logger.warning("could not write the text cache (%s)", exc.strerror)
