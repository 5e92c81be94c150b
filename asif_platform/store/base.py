"""The anchor store interface: one Qdrant collection per anchor collection.

Every point is one image-caption pair. Its id is the anchor id, and it carries two
named cosine vectors, ``image`` and ``text``, plus a small payload used for filtering
(never the caption itself: captions live only in the catalog).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from asif_platform.errors import AnchorStoreError, ConfigError

__all__ = [
    "IMAGE_VECTOR",
    "PAYLOAD_INDEXES",
    "TEXT_VECTOR",
    "AnchorFilter",
    "AnchorStore",
    "CollectionSchema",
    "SearchResult",
    "VectorName",
    "validate_collection_name",
]

IMAGE_VECTOR = "image"
TEXT_VECTOR = "text"
VectorName = Literal["image", "text"]

# Payload fields that get a keyword index when a collection is created.
# Indexed payload fields and their types. ``versions`` lists the frozen versions a
# pair is in; ``consent_expires`` is a Unix time.
PAYLOAD_INDEXES: dict[str, str] = {
    "source_dataset": "keyword",
    "image_sha256": "keyword",
    "versions": "keyword",
    "license_class": "keyword",
    "consent_status": "keyword",
    "consent_expires": "float",
}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def validate_collection_name(name: str) -> str:
    """Return ``name`` if it is a valid collection name, else raise ConfigError."""
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid collection name {name!r}: use 1-63 lower-case letters, digits, "
            "'-' or '_', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class CollectionSchema:
    """What a Qdrant collection for anchors must look like.

    Attributes:
        name: Collection name (see :func:`validate_collection_name`).
        image_dim: Size of the ``image`` vectors.
        text_dim: Size of the ``text`` vectors.
        hnsw_m: HNSW graph degree. Defaults to 32: ASIF needs the top 800 of each
            query, and m=16 recalled only 90-97% of them at 100k anchors.
        hnsw_ef_construct: HNSW build-time candidate list. Defaults to 256.
        quantization: ``None`` for float32 only, ``"int8"`` for scalar quantization
            (originals kept for rescoring). Defaults to None.
    """

    name: str
    image_dim: int
    text_dim: int
    hnsw_m: int = 32
    hnsw_ef_construct: int = 256
    quantization: Literal["int8"] | None = None

    def dims(self) -> dict[str, int]:
        return {IMAGE_VECTOR: self.image_dim, TEXT_VECTOR: self.text_dim}


@dataclass(frozen=True)
class AnchorFilter:
    """Payload conditions a returned anchor must satisfy.

    Attributes:
        must_match: field -> allowed values; every field must match one value.
        must_not_match: field -> excluded values; no field may match any of them.
        exclude_ids: Anchor ids never to return.
        expired_at: A Unix time: anchors whose ``consent_expires`` is at or before it
            are not returned.
    """

    must_match: Mapping[str, Sequence[str | int | bool]] = field(default_factory=dict)
    must_not_match: Mapping[str, Sequence[str | int | bool]] = field(
        default_factory=dict
    )
    exclude_ids: Sequence[int] = ()
    expired_at: float | None = None

    def is_empty(self) -> bool:
        return not (self.must_match or self.must_not_match or self.exclude_ids
                    or self.expired_at is not None)

    def merged(self, other: AnchorFilter | None) -> AnchorFilter:
        """Both filters' conditions at once."""
        if other is None:
            return self
        times = [t for t in (self.expired_at, other.expired_at) if t is not None]
        return AnchorFilter(
            must_match={**self.must_match, **other.must_match},
            must_not_match={**self.must_not_match, **other.must_not_match},
            exclude_ids=[*self.exclude_ids, *other.exclude_ids],
            expired_at=max(times) if times else None,
        )


@dataclass(frozen=True)
class SearchResult:
    """Top anchors of one query, best first.

    Attributes:
        ids: int64 array of shape (n,), n <= limit.
        scores: float32 array of shape (n,), cosine similarities, descending.
    """

    ids: np.ndarray
    scores: np.ndarray


class AnchorStore(ABC):
    """Stores anchor vectors and answers top-k searches over them."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """Whether a collection called ``name`` exists."""

    @abstractmethod
    def create(self, schema: CollectionSchema) -> None:
        """Create the collection with its named vectors and payload indexes."""

    @abstractmethod
    def describe(self, name: str) -> dict[str, int]:
        """The existing collection's vector sizes by vector name."""

    @abstractmethod
    def drop(self, name: str) -> None:
        """Delete the collection and all its points."""

    @abstractmethod
    def upsert(
        self,
        name: str,
        ids: Sequence[int],
        image_vectors: np.ndarray,
        text_vectors: np.ndarray,
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write points and wait until the engine has applied them."""

    @abstractmethod
    def delete(self, name: str, ids: Sequence[int]) -> None:
        """Delete points by id and wait until the engine has applied it."""

    @abstractmethod
    def set_payload(self, name: str, ids: Sequence[int], payload: Mapping[str, Any]) -> None:
        """Set payload fields (other fields unchanged) on points; wait until applied."""

    @abstractmethod
    def overwrite_payload(self, name: str, payloads: Mapping[int, Mapping[str, Any]]) -> None:
        """Replace each point's whole payload (by id); wait until applied."""

    @abstractmethod
    def ensure_payload_index(self, name: str, field_name: str) -> None:
        """Index a payload field (type from PAYLOAD_INDEXES) if it has none (idempotent)."""

    @abstractmethod
    def count(self, name: str) -> int:
        """Exact number of points in the collection."""

    @abstractmethod
    def list_ids(self, name: str) -> np.ndarray:
        """Every point id in the collection, as int64."""

    @abstractmethod
    def retrieve(
        self, name: str, ids: Sequence[int], *, with_vectors: bool = False
    ) -> dict[int, dict[str, Any]]:
        """Points by id: ``{id: {"payload": ..., "image": ..., "text": ...}}``.

        Missing ids are absent from the result. Vectors are included only when
        ``with_vectors`` is true.
        """

    @abstractmethod
    def search(
        self,
        name: str,
        vector: VectorName,
        queries: np.ndarray,
        limit: int,
        *,
        exact: bool = False,
        hnsw_ef: int | None = None,
        anchor_filter: AnchorFilter | None = None,
        oversampling: float | None = None,
    ) -> list[SearchResult]:
        """Top-``limit`` anchors by cosine similarity for each query row.

        Args:
            name: Collection name.
            vector: Which named vector to search, ``"image"`` or ``"text"``.
            queries: float32 array of shape (n_queries, dim).
            limit: Anchors to return per query.
            exact: Brute-force search instead of the HNSW index. Defaults to False.
            hnsw_ef: HNSW search beam; None lets the store choose. Defaults to None.
            anchor_filter: Payload conditions. Defaults to None.
            oversampling: With int8 quantization, how many more candidates than
                ``limit`` are rescored with the float32 originals; None lets the
                store choose. Defaults to None.

        Returns:
            One SearchResult per query row, in order.
        """

    def compact(self, name: str) -> None:  # noqa: B027 - optional hook
        """Remove deleted points from disk, not only from queries.

        The default does nothing: a Qdrant server's vacuum optimizer rewrites
        segments on its own schedule (see its ``optimizers_config``).
        """

    def optimize(self, name: str) -> None:  # noqa: B027 - optional hook
        """Build the HNSW graphs and int8 copies of newly written points; blocks.

        The default does nothing: a Qdrant server's optimizer indexes segments on
        its own, in the background, once they pass its ``indexing_threshold``.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; the default does nothing."""

    def check_schema(self, schema: CollectionSchema) -> None:
        """Raise SchemaMismatch unless the existing collection matches ``schema``."""
        from asif_platform.errors import SchemaMismatch

        found = self.describe(schema.name)
        expected = schema.dims()
        if found != expected:
            raise SchemaMismatch(
                f"Qdrant collection {schema.name!r} has vectors {found}, but the "
                f"catalog expects {expected}; it was made with other encoders. Drop it "
                "or use another collection name"
            )

    @staticmethod
    def _check_batch(
        schema_dims: Mapping[str, int],
        ids: Sequence[int],
        image_vectors: np.ndarray,
        text_vectors: np.ndarray,
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        n = len(ids)
        for vector_name, array in ((IMAGE_VECTOR, image_vectors), (TEXT_VECTOR, text_vectors)):
            if array.ndim != 2 or array.shape[0] != n:
                raise AnchorStoreError(
                    f"{vector_name} vectors have shape {array.shape}, expected ({n}, dim)"
                )
            if array.shape[1] != schema_dims[vector_name]:
                raise AnchorStoreError(
                    f"{vector_name} vectors have size {array.shape[1]} but the "
                    f"collection stores size {schema_dims[vector_name]}"
                )
            if not np.isfinite(array).all():
                raise AnchorStoreError(f"{vector_name} vectors contain NaN or inf")
        if len(payloads) != n:
            raise AnchorStoreError(f"{len(payloads)} payloads for {n} ids")
