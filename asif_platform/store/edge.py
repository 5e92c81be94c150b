"""The embedded anchor store: one Qdrant Edge shard per collection, in-process."""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe

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

__all__ = ["EdgeAnchorStore"]

logger = logging.getLogger(__name__)

_WRITE_CHUNK = 512
_SEARCH_CHUNK = 256


@contextmanager
def _translated(action: str, name: str) -> Iterator[None]:
    # qdrant-edge raises bare Exceptions; give them our type and context.
    try:
        yield
    except (AnchorStoreError, NotFound):
        raise
    except Exception as exc:
        raise AnchorStoreError(f"Qdrant Edge failed to {action} in {name!r}: {exc}") from exc


class EdgeAnchorStore(AnchorStore):
    """Anchor store on Qdrant Edge shards under ``root/<collection>``.

    Args:
        root: Directory that holds one shard directory per collection.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._locks: dict[str, Any] = {}

    def _path(self, name: str) -> Path:
        return self.root / validate_collection_name(name)

    def _shard(self, name: str) -> qe.EdgeShard:
        shard = self._shards.get(name)
        if shard is not None:
            return shard
        self._recover(name)
        if not self.exists(name):
            raise NotFound(f"no Qdrant Edge shard for collection {name!r} in {self.root}")
        self._lock(name)
        try:
            shard = qe.EdgeShard.load(str(self._path(name)))
        except Exception as exc:  # qdrant-edge raises bare Exceptions
            if "WouldBlock" in str(exc):
                raise AnchorStoreError(
                    f"the embedded Qdrant shard of {name!r} is open in another process; "
                    "wait for it to finish, or use a Qdrant server (ASIF_QDRANT_URL) "
                    "for concurrent access"
                ) from exc
            raise AnchorStoreError(f"Qdrant Edge failed to open the shard {name!r}: {exc}") from exc
        self._shards[name] = shard
        return shard

    def _lock(self, name: str) -> None:
        """Hold an exclusive lock on the shard for this store's lifetime.

        Taken before qdrant-edge touches the shard's files: a second process is
        refused here, where loading the shard would break the process that has it.
        """
        if name in self._locks:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        lock = open(self.root / f".{name}.lock", "w")  # noqa: SIM115 - held while open
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise AnchorStoreError(
                f"the embedded Qdrant shard of {name!r} is open in another process; "
                "wait for it to finish, or use a Qdrant server (ASIF_QDRANT_URL) "
                "for concurrent access"
            ) from None
        self._locks[name] = lock

    def exists(self, name: str) -> bool:
        return (self._path(name) / "edge_config.json").is_file()

    def create(self, schema: CollectionSchema) -> None:
        path = self._path(schema.name)
        quantization = None
        if schema.quantization == "int8":
            quantization = qe.ScalarQuantizationConfig(
                type=qe.ScalarType.Int8, quantile=0.99, always_ram=True
            )
        config = qe.EdgeConfig(
            vectors={
                # With int8, searches run on the quantized copies kept in RAM and
                # rescore their candidates from the float32 originals on disk.
                vector_name: qe.EdgeVectorParams(
                    size=size, distance=qe.Distance.Cosine, on_disk=quantization is not None
                )
                for vector_name, size in schema.dims().items()
            },
            hnsw_config=qe.HnswIndexConfig(
                m=schema.hnsw_m,
                ef_construct=schema.hnsw_ef_construct,
                full_scan_threshold=10_000,
            ),
            quantization_config=quantization,
        )
        self._lock(schema.name)
        with _translated("create the shard", schema.name):
            path.parent.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(path), config)
            for field_name, kind in PAYLOAD_INDEXES.items():
                shard.update(qe.UpdateOperation.create_field_index(field_name, _EDGE_TYPES[kind]))
            shard.flush()
        self._shards[schema.name] = shard
        logger.info("created Qdrant Edge shard %s", schema.name)

    def describe(self, name: str) -> dict[str, int]:
        config_file = self._path(name) / "edge_config.json"
        if not config_file.is_file():
            raise NotFound(f"no Qdrant Edge shard for collection {name!r} in {self.root}")
        config = json.loads(config_file.read_text())
        return {key: int(value["size"]) for key, value in config["vectors"].items()}

    def drop(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._path(name), ignore_errors=True)
        logger.info("dropped Qdrant Edge shard %s", name)

    def upsert(
        self,
        name: str,
        ids: Sequence[int],
        image_vectors: np.ndarray,
        text_vectors: np.ndarray,
        payloads: Sequence[Mapping[str, Any]],
    ) -> None:
        self._check_batch(self.describe(name), ids, image_vectors, text_vectors, payloads)
        shard = self._shard(name)
        with _translated("upsert points", name):
            for start in range(0, len(ids), _WRITE_CHUNK):
                stop = start + _WRITE_CHUNK
                points = [
                    qe.Point(
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
                shard.update(qe.UpdateOperation.upsert_points(points))
            shard.flush()
        logger.info("upserted %d points into %s", len(ids), name)

    def delete(self, name: str, ids: Sequence[int]) -> None:
        shard = self._shard(name)
        with _translated("delete points", name):
            shard.update(qe.UpdateOperation.delete_points([int(i) for i in ids]))
            shard.flush()
        logger.info("deleted %d points from %s", len(ids), name)

    def set_payload(self, name: str, ids: Sequence[int], payload: Mapping[str, Any]) -> None:
        shard = self._shard(name)
        with _translated("set payload", name):
            for start in range(0, len(ids), _WRITE_CHUNK):
                chunk = [int(i) for i in ids[start : start + _WRITE_CHUNK]]
                shard.update(qe.UpdateOperation.set_payload(chunk, dict(payload)))
            shard.flush()

    def overwrite_payload(self, name: str, payloads: Mapping[int, Mapping[str, Any]]) -> None:
        shard = self._shard(name)
        with _translated("overwrite payload", name):
            for point_id, payload in payloads.items():
                shard.update(qe.UpdateOperation.overwrite_payload([int(point_id)], dict(payload)))
            shard.flush()

    def ensure_payload_index(self, name: str, field_name: str) -> None:
        with _translated("index a payload field", name):
            shard = self._shard(name)
            kind = _EDGE_TYPES[PAYLOAD_INDEXES[field_name]]
            shard.update(qe.UpdateOperation.create_field_index(field_name, kind))
            shard.flush()

    def count(self, name: str) -> int:
        with _translated("count points", name):
            return int(self._shard(name).count(qe.CountRequest(exact=True)))

    def list_ids(self, name: str) -> np.ndarray:
        shard = self._shard(name)
        found: list[int] = []
        offset: Any = None
        with _translated("scroll points", name):
            while True:
                records, offset = shard.scroll(
                    qe.ScrollRequest(
                        offset=offset, limit=10_000, with_payload=False, with_vector=False
                    )
                )
                found.extend(int(record.id) for record in records)
                if offset is None:
                    break
        return np.asarray(found, dtype=np.int64)

    def retrieve(
        self, name: str, ids: Sequence[int], *, with_vectors: bool = False
    ) -> dict[int, dict[str, Any]]:
        with _translated("retrieve points", name):
            records = self._shard(name).retrieve(
                [int(i) for i in ids], with_payload=True, with_vector=with_vectors
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
        shard = self._shard(name)
        params = qe.SearchParams(
            exact=exact,
            hnsw_ef=hnsw_ef,
            quantization=qe.QuantizationSearchParams(rescore=True, oversampling=oversampling),
        )
        qdrant_filter = _to_edge_filter(anchor_filter)
        results: list[SearchResult] = []
        with _translated(f"search {vector} vectors", name):
            for start in range(0, len(queries), _SEARCH_CHUNK):
                batch = qe.QueryBatchRequest(
                    [
                        qe.QueryRequest(
                            limit=limit,
                            query=qe.Query.Nearest(row.tolist(), using=vector),
                            filter=qdrant_filter,
                            params=params,
                            with_payload=False,
                            with_vector=False,
                        )
                        for row in queries[start : start + _SEARCH_CHUNK]
                    ]
                )
                for hits in shard.query_batch(batch):
                    results.append(
                        SearchResult(
                            ids=np.fromiter((h.id for h in hits), np.int64, len(hits)),
                            scores=np.fromiter(
                                (h.score for h in hits), np.float32, len(hits)
                            ),
                        )
                    )
        return results

    def compact(self, name: str) -> None:
        """Rewrite the shard with only its live points, then swap it in.

        Qdrant marks deleted points and keeps their bytes (and the WAL keeps the
        writes) until segments are rewritten; a fresh shard holds only what is live.
        A crash leaves either the old shard or the complete new one (see _recover).
        """
        source = self._shard(name)  # first: opening finishes any earlier compaction
        path = self._path(name)
        fresh, done = path.with_name(name + ".compacting"), path.with_name(name + ".compacted")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(parents=True)
        shutil.copy(path / "edge_config.json", fresh / "edge_config.json")
        with _translated("compact the shard", name):
            target = qe.EdgeShard.load(str(fresh))  # an empty shard with the same config
            for field_name, kind in PAYLOAD_INDEXES.items():
                target.update(qe.UpdateOperation.create_field_index(field_name, _EDGE_TYPES[kind]))
            offset: Any = None
            while True:
                records, offset = source.scroll(qe.ScrollRequest(
                    offset=offset, limit=_WRITE_CHUNK, with_payload=True, with_vector=True))
                if records:
                    target.update(qe.UpdateOperation.upsert_points([
                        qe.Point(id=r.id, vector=r.vector, payload=r.payload) for r in records
                    ]))
                if offset is None:
                    break
            target.flush()
            target.close()
        source.close()
        del self._shards[name]
        fresh.rename(done)  # the new shard is complete
        self._recover(name)
        self.optimize(name)  # the rewritten points are not indexed yet
        logger.info("compacted Qdrant Edge shard %s", name)

    def _recover(self, name: str) -> None:
        """Finish or undo an interrupted compaction."""
        path = self._path(name)
        done, fresh = path.with_name(name + ".compacted"), path.with_name(name + ".compacting")
        if done.exists():
            retired = path.with_name(name + ".retired")
            if path.exists():
                path.rename(retired)
            done.rename(path)
            shutil.rmtree(retired, ignore_errors=True)
        shutil.rmtree(fresh, ignore_errors=True)

    def optimize(self, name: str) -> None:
        """Merge segments and build the HNSW graphs and int8 copies; blocks.

        Qdrant Edge has no background optimizer: without this, new points are
        searched by brute force and an int8 collection keeps no int8 copies.
        """
        with _translated("optimize", name):
            self._shard(name).optimize()
        logger.info("optimized Qdrant Edge shard %s", name)

    def close(self) -> None:
        for shard in self._shards.values():
            shard.close()
        self._shards.clear()
        for lock in self._locks.values():
            lock.close()  # releases the flock
        self._locks.clear()


_EDGE_TYPES = {"keyword": qe.PayloadSchemaType.Keyword, "float": qe.PayloadSchemaType.Float}


def _to_edge_filter(anchor_filter: AnchorFilter | None) -> qe.Filter | None:
    if anchor_filter is None or anchor_filter.is_empty():
        return None
    must: list[Any] = [
        qe.FieldCondition(key=key, match=qe.MatchAny(list(values)))
        for key, values in anchor_filter.must_match.items()
    ]
    must_not: list[Any] = [
        qe.FieldCondition(key=key, match=qe.MatchAny(list(values)))
        for key, values in anchor_filter.must_not_match.items()
    ]
    if anchor_filter.exclude_ids:
        must_not.append(qe.HasIdCondition({int(i) for i in anchor_filter.exclude_ids}))
    if anchor_filter.expired_at is not None:
        must_not.append(qe.FieldCondition(key="consent_expires",
                                          range=qe.RangeFloat(lte=anchor_filter.expired_at)))
    return qe.Filter(must=must or None, must_not=must_not or None)
