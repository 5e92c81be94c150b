"""The anchor store on a Qdrant server or cluster, through qdrant-client.

``QdrantClient(":memory:")`` or a local path runs the same calls in-process; the tests
use that mode, since no Qdrant server binary is available where they run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from asif_platform.errors import AnchorStoreError, NotFound
from asif_platform.store.base import (
    IMAGE_VECTOR,
    PAYLOAD_INDEXES,
    TEXT_VECTOR,
    AnchorFilter,
    AnchorStore,
    CollectionSchema,
    SearchResult,
    VectorName,
    validate_collection_name,
)

__all__ = ["ServerAnchorStore"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_WRITE_CHUNK = 256
_SEARCH_CHUNK = 64
_RETRIES = 4


class ServerAnchorStore(AnchorStore):
    """Anchor store backed by qdrant-client.

    Args:
        client: A connected client; use :meth:`from_location` to build one.
        prefix: Prepended to every collection name on the server. Defaults to "asif_".
        shard_number: Shards for new collections (clusters). Defaults to None.
        replication_factor: Replicas for new collections (clusters). Defaults to None.
    """

    def __init__(
        self,
        client: QdrantClient,
        *,
        prefix: str = "asif_",
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.shard_number = shard_number
        self.replication_factor = replication_factor

    @classmethod
    def from_location(
        cls,
        location: str,
        api_key: str | None = None,
        *,
        shard_number: int | None = None,
        replication_factor: int | None = None,
    ) -> ServerAnchorStore:
        """Connect to a URL (``http://...``), ``":memory:"`` or a local path.

        ``shard_number`` and ``replication_factor`` apply to collections created
        later; the in-process modes accept and ignore them.
        """
        if location == ":memory:":
            client = QdrantClient(location=":memory:")
        elif location.startswith(("http://", "https://")):
            client = QdrantClient(url=location, api_key=api_key)
        else:
            client = QdrantClient(path=location)
        return cls(client, shard_number=shard_number, replication_factor=replication_factor)

    def _name(self, name: str) -> str:
        return self.prefix + validate_collection_name(name)

    def _call(self, action: str, name: str, function: Callable[[], T]) -> T:
        # Transient failures (connection resets, 5xx) are retried with backoff;
        # everything else is translated at once.
        for attempt in range(_RETRIES):
            try:
                return function()
            except ResponseHandlingException as exc:
                error: Exception = exc
            except UnexpectedResponse as exc:
                if exc.status_code == 404:
                    raise NotFound(f"Qdrant has no collection {name!r}") from exc
                if exc.status_code is None or exc.status_code < 500:
                    raise AnchorStoreError(
                        f"Qdrant refused to {action} in {name!r}: {exc}"
                    ) from exc
                error = exc
            except (ValueError, KeyError, AssertionError) as exc:
                # The in-process client reports bad input with these.
                raise AnchorStoreError(f"Qdrant failed to {action} in {name!r}: {exc}") from exc
            delay = 0.2 * 2**attempt
            logger.warning("retrying %s on %s in %.1fs (attempt %d)", action, name, delay, attempt + 1)
            time.sleep(delay)
        raise AnchorStoreError(
            f"Qdrant failed to {action} in {name!r} after {_RETRIES} attempts: {error}"
        ) from error

    def exists(self, name: str) -> bool:
        return self._call(
            "check a collection", name, lambda: self.client.collection_exists(self._name(name))
        )

    def create(self, schema: CollectionSchema) -> None:
        quantization = None
        if schema.quantization == "int8":
            quantization = models.ScalarQuantization(
                scalar=models.ScalarQuantizationConfig(
                    type=models.ScalarType.INT8, quantile=0.99, always_ram=True
                )
            )
        qdrant_name = self._name(schema.name)

        def create() -> None:
            self.client.create_collection(
                qdrant_name,
                vectors_config={
                    # int8: quantized copies in RAM, float32 originals on disk for rescoring.
                    vector_name: models.VectorParams(
                        size=size, distance=models.Distance.COSINE, on_disk=quantization is not None
                    )
                    for vector_name, size in schema.dims().items()
                },
                hnsw_config=models.HnswConfigDiff(
                    m=schema.hnsw_m, ef_construct=schema.hnsw_ef_construct
                ),
                quantization_config=quantization,
                shard_number=self.shard_number,
                replication_factor=self.replication_factor,
            )
            for field_name, kind in PAYLOAD_INDEXES.items():
                self.client.create_payload_index(
                    qdrant_name, field_name, _CLIENT_TYPES[kind], wait=True
                )

        self._call("create the collection", schema.name, create)
        logger.info("created Qdrant collection %s (shards %s, replication %s)", qdrant_name,
                    self.shard_number or "default", self.replication_factor or "default")

    def describe(self, name: str) -> dict[str, int]:
        info = self._call(
            "describe the collection", name, lambda: self.client.get_collection(self._name(name))
        )
        vectors = info.config.params.vectors
        if not isinstance(vectors, dict):
            return {"": int(vectors.size)} if vectors is not None else {}
        return {key: int(params.size) for key, params in vectors.items()}

    def drop(self, name: str) -> None:
        self._call(
            "drop the collection", name, lambda: self.client.delete_collection(self._name(name))
        )
        logger.info("dropped Qdrant collection %s", self._name(name))

    def upsert(
        self,
        name: str,
        ids: Sequence[int],
        image_vectors: np.ndarray,
        text_vectors: np.ndarray,
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        self._check_batch(self.describe(name), ids, image_vectors, text_vectors, payloads)
        for start in range(0, len(ids), _WRITE_CHUNK):
            stop = start + _WRITE_CHUNK
            points = [
                models.PointStruct(
                    id=int(point_id),
                    vector={IMAGE_VECTOR: image.tolist(), TEXT_VECTOR: text.tolist()},
                    payload=dict(payload),
                )
                for point_id, image, text, payload in zip(
                    ids[start:stop],
                    image_vectors[start:stop],
                    text_vectors[start:stop],
                    payloads[start:stop],
                    strict=True,
                )
            ]
            self._call(
                "upsert points",
                name,
                lambda points=points: self.client.upsert(self._name(name), points, wait=True),
            )
        logger.info("upserted %d points into %s", len(ids), self._name(name))

    def delete(self, name: str, ids: Sequence[int]) -> None:
        selector = models.PointIdsList(points=[int(i) for i in ids])
        self._call(
            "delete points",
            name,
            lambda: self.client.delete(self._name(name), selector, wait=True),
        )
        logger.info("deleted %d points from %s", len(ids), self._name(name))

    def set_payload(self, name: str, ids: Sequence[int], payload: Mapping[str, Any]) -> None:
        for start in range(0, len(ids), _WRITE_CHUNK):
            chunk = [int(i) for i in ids[start : start + _WRITE_CHUNK]]
            self._call(
                "set payload",
                name,
                lambda chunk=chunk: self.client.set_payload(
                    self._name(name), dict(payload), points=chunk, wait=True
                ),
            )

    def overwrite_payload(self, name: str, payloads: Mapping[int, Mapping[str, Any]]) -> None:
        operations = [
            models.OverwritePayloadOperation(
                overwrite_payload=models.SetPayload(payload=dict(payload), points=[int(i)])
            )
            for i, payload in payloads.items()
        ]
        for start in range(0, len(operations), _WRITE_CHUNK):
            chunk = operations[start : start + _WRITE_CHUNK]
            self._call(
                "overwrite payload",
                name,
                lambda chunk=chunk: self.client.batch_update_points(
                    self._name(name), chunk, wait=True
                ),
            )

    def ensure_payload_index(self, name: str, field_name: str) -> None:
        self._call(
            "index a payload field",
            name,
            lambda: self.client.create_payload_index(
                self._name(name), field_name, _CLIENT_TYPES[PAYLOAD_INDEXES[field_name]],
                wait=True,
            ),
        )

    def count(self, name: str) -> int:
        result = self._call(
            "count points", name, lambda: self.client.count(self._name(name), exact=True)
        )
        return int(result.count)

    def list_ids(self, name: str) -> np.ndarray:
        found: list[int] = []
        offset: Any = None
        while True:
            records, offset = self._call(
                "scroll points",
                name,
                lambda offset=offset: self.client.scroll(
                    self._name(name),
                    limit=10_000,
                    offset=offset,
                    with_payload=False,
                    with_vectors=False,
                ),
            )
            found.extend(int(record.id) for record in records)
            if offset is None:
                break
        return np.asarray(found, dtype=np.int64)

    def retrieve(
        self, name: str, ids: Sequence[int], *, with_vectors: bool = False
    ) -> dict[int, dict[str, Any]]:
        records = self._call(
            "retrieve points",
            name,
            lambda: self.client.retrieve(
                self._name(name),
                [int(i) for i in ids],
                with_payload=True,
                with_vectors=with_vectors,
            ),
        )
        result: dict[int, dict[str, Any]] = {}
        for record in records:
            entry: dict[str, Any] = {"payload": dict(record.payload or {})}
            if with_vectors and isinstance(record.vector, dict):
                for vector_name in (IMAGE_VECTOR, TEXT_VECTOR):
                    entry[vector_name] = np.asarray(
                        record.vector[vector_name], dtype=np.float32
                    )
            result[int(record.id)] = entry
        return result

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
        params = models.SearchParams(
            exact=exact,
            hnsw_ef=hnsw_ef,
            quantization=models.QuantizationSearchParams(
                rescore=True, oversampling=oversampling
            ),
        )
        qdrant_filter = _to_client_filter(anchor_filter)
        results: list[SearchResult] = []
        for start in range(0, len(queries), _SEARCH_CHUNK):
            requests = [
                models.QueryRequest(
                    query=row.tolist(),
                    using=vector,
                    limit=limit,
                    filter=qdrant_filter,
                    params=params,
                    with_payload=False,
                    with_vector=False,
                )
                for row in queries[start : start + _SEARCH_CHUNK]
            ]
            responses = self._call(
                f"search {vector} vectors",
                name,
                lambda requests=requests: self.client.query_batch_points(
                    self._name(name), requests
                ),
            )
            for response in responses:
                hits = response.points
                results.append(
                    SearchResult(
                        ids=np.fromiter((int(h.id) for h in hits), np.int64, len(hits)),
                        scores=np.fromiter((h.score for h in hits), np.float32, len(hits)),
                    )
                )
        return results

    def close(self) -> None:
        self.client.close()


_CLIENT_TYPES = {"keyword": models.PayloadSchemaType.KEYWORD,
                 "float": models.PayloadSchemaType.FLOAT}


def _to_client_filter(anchor_filter: AnchorFilter | None) -> models.Filter | None:
    if anchor_filter is None or anchor_filter.is_empty():
        return None
    must: list[Any] = [
        models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))
        for key, values in anchor_filter.must_match.items()
    ]
    must_not: list[Any] = [
        models.FieldCondition(key=key, match=models.MatchAny(any=list(values)))
        for key, values in anchor_filter.must_not_match.items()
    ]
    if anchor_filter.exclude_ids:
        must_not.append(
            models.HasIdCondition(has_id=[int(i) for i in anchor_filter.exclude_ids])
        )
    if anchor_filter.expired_at is not None:
        must_not.append(models.FieldCondition(
            key="consent_expires", range=models.Range(lte=anchor_filter.expired_at)))
    return models.Filter(must=must or None, must_not=must_not or None)
