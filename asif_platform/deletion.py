"""Compliance deletion: requests, preview, a crash-safe apply, purge and receipts.

Applying a request runs five idempotent steps; a crash at any point is completed by
running ``asif deletion apply`` again, and nothing is deleted twice:

1. intent: the selected pairs get ``pending`` tombstones (ids and hashes only);
2. delete: Qdrant deletes the tombstoned points and waits;
3. verify: retrieving the ids returns nothing, and searching with each deleted pair's
   own image vector and caption vector returns none of them in the top-k;
4. finalize: one catalog transaction drops the pairs' rows (captions, image
   references), records which frozen versions lost them, and marks the tombstones
   ``deleted``;
5. purge: the embedded Qdrant shard is rewritten without the deleted points and the
   catalog database is vacuumed, so neither vectors nor captions stay on disk.

The audit log gets one entry per step with ids and hashes; the receipt holds the
counts, removed ids, timestamps, verification results and those entries' hashes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import func, or_, select, text

from asif_platform.audit import append_entry, audit
from asif_platform.catalog import (
    Anchor,
    AuditEntry,
    Collection,
    DeletionRequest,
    Tombstone,
    Version,
    VersionMember,
    VersionRedaction,
    utcnow,
)
from asif_platform.errors import AnchorStoreError, ConfigError, NotFound
from asif_platform.query.cache import clear_text_cache

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["DeletionSelector", "apply_request", "create_request", "preview_request",
           "purge_catalog", "request_status"]

logger = logging.getLogger(__name__)

_CHUNK = 900
NEAR_DUPLICATE_THRESHOLD = 0.95


@dataclass(frozen=True)
class DeletionSelector:
    """Which pairs a request removes: every pair matching any criterion."""

    anchor_ids: tuple[int, ...] = ()
    source_record_ids: tuple[str, ...] = ()
    source_datasets: tuple[str, ...] = ()
    creators: tuple[str, ...] = ()
    licenses: tuple[str, ...] = ()
    caption_contains: tuple[str, ...] = ()
    image_sha256s: tuple[str, ...] = ()
    # Near duplicates of a given image, found when the request was made and reviewed.
    near_duplicate_ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, list[Any]]:
        return {key: list(value) for key, value in self.__dict__.items() if value}

    @classmethod
    def from_dict(cls, data: dict[str, list[Any]]) -> DeletionSelector:
        return cls(**{key: tuple(value) for key, value in data.items()})

    def is_empty(self) -> bool:
        return not any(self.__dict__.values())

    def conditions(self) -> list[Any]:
        columns = [
            (Anchor.id, self.anchor_ids + self.near_duplicate_ids),
            (Anchor.source_record_id, self.source_record_ids),
            (Anchor.source_dataset, self.source_datasets),
            (Anchor.creator, self.creators),
            (Anchor.license, self.licenses),
            (Anchor.image_sha256, self.image_sha256s),
        ]
        found = [column.in_(values) for column, values in columns if values]
        # A literal substring: % and _ in the text are not wildcards.
        found += [func.lower(Anchor.caption).contains(t.lower(), autoescape=True)
                  for t in self.caption_contains]
        return found


def _sha256(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def near_duplicates(platform: Platform, collection_name: str, image_file: Path,
                    threshold: float = NEAR_DUPLICATE_THRESHOLD) -> tuple[str, list[int]]:
    """The image's sha256 and the ids of pairs whose image vector is at least
    ``threshold`` cosine-similar to it (for review before they are included)."""
    from asif_platform.encoders import load_image

    engine = platform.engine(collection_name)
    digest = hashlib.sha256(Path(image_file).read_bytes()).hexdigest()
    vector = engine.encode_images([load_image(image_file)])
    result = platform.store.search(collection_name, "image", vector, 100, exact=True)[0]
    return digest, [int(i) for i, s in zip(result.ids, result.scores, strict=True)
                    if s >= threshold]


def create_request(
    platform: Platform,
    collection_name: str,
    selector: DeletionSelector,
    *,
    legal_basis: str,
    deadline: datetime | None = None,
    requester: str | None = None,
) -> int:
    """Record a deletion request; nothing is deleted yet. Returns its id.

    ``requester`` (a name, an email...) is stored only as a sha256.
    """
    if selector.is_empty():
        raise ConfigError("a deletion request needs at least one selector")
    if any(not text.strip() for text in selector.caption_contains):
        raise ConfigError("an empty caption text would select every pair; give the text")
    if not legal_basis.strip():
        raise ConfigError("give the legal basis of the request (--basis)")
    collection = platform.get_collection(collection_name, "write")
    with platform.catalog.session() as session:
        request = DeletionRequest(
            collection_id=collection.id, recorded_by=platform.settings.principal,
            requester_sha256=hashlib.sha256(requester.encode()).hexdigest() if requester else None,
            legal_basis=legal_basis, deadline=deadline, selector=selector.to_dict(),
            selector_sha256=_sha256(selector.to_dict()), status="requested",
        )
        session.add(request)
        session.flush()
        request_id = request.id
    audit(platform, "deletion.request", f"deletion:{request_id}",
          details={"collection": collection_name, "selector_sha256": request.selector_sha256})
    return request_id


def _request(platform: Platform, request_id: int) -> tuple[DeletionRequest, Collection]:
    with platform.catalog.session() as session:
        request = session.get(DeletionRequest, request_id)
        if request is None:
            raise NotFound(f"no deletion request {request_id}; see `asif audit list`")
        collection = session.get(Collection, request.collection_id)
    assert collection is not None
    platform.get_collection(collection.name, "write")  # the role check
    return request, collection


def _selected_ids(platform: Platform, collection: Collection, selector: DeletionSelector) -> list[int]:
    with platform.catalog.session() as session:
        return sorted(session.scalars(select(Anchor.id).where(
            Anchor.collection_id == collection.id, or_(*selector.conditions()))))


def preview_request(platform: Platform, request_id: int, *, content: bool = False) -> dict[str, Any]:
    """What applying would remove: counts by source and by version, and the ids;
    captions and image references only when ``content`` is asked for."""
    request, collection = _request(platform, request_id)
    if request.status in ("finalized", "completed"):
        finish = ("apply it again to finish it, then its receipt shows what was done"
                  if request.status == "finalized" else "its receipt shows what was done")
        raise ConfigError(
            f"deletion request {request_id} is {request.status}: its pairs are gone and "
            f"its selector erased; {finish}"
        )
    selector = DeletionSelector.from_dict(request.selector)
    ids = _selected_ids(platform, collection, selector)
    with platform.catalog.session() as session:
        by_source: dict[str, int] = {}
        by_version: dict[str, int] = {}
        rows: list[dict[str, Any]] = []
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for source, count in session.execute(
                select(Anchor.source_dataset, func.count()).where(Anchor.id.in_(chunk))
                .group_by(Anchor.source_dataset)
            ):
                by_source[source] = by_source.get(source, 0) + count
            for name, count in session.execute(
                select(Version.name, func.count()).join(VersionMember).where(
                    VersionMember.anchor_id.in_(chunk)).group_by(Version.name)
            ):
                by_version[name] = by_version.get(name, 0) + count
            if content:
                rows += [{"anchor_id": str(a.id), "caption": a.caption, "image_ref": a.image_ref}
                         for a in session.scalars(select(Anchor).where(Anchor.id.in_(chunk)))]
    audit(platform, "deletion.preview", f"deletion:{request_id}",
          details={"pairs": len(ids), "content_shown": content})
    data = {"request": request_id, "collection": collection.name, "status": request.status,
            "pairs": len(ids), "by_source": by_source, "by_version": by_version,
            "anchor_ids": [str(i) for i in ids]}
    if content:
        data["pairs_content"] = rows
    return data


@dataclass
class _Progress:
    request_id: int
    collection: str
    ids: list[int] = field(default_factory=list)
    vectors: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)


def apply_request(platform: Platform, request_id: int) -> dict[str, Any]:
    """Carry out a request (or finish one a crash interrupted); returns the receipt."""
    request, collection = _request(platform, request_id)
    if request.status == "completed":
        return {**request.receipt, "already_completed": True}
    if request.status != "finalized":
        progress = _Progress(request_id, collection.name)
        record_intent(platform, collection, request, progress)
        delete_points(platform, progress)
        verify_deleted(platform, collection, progress)
        finalize(platform, collection, request, progress)
    purge(platform, collection.name, request_id)
    return _complete(platform, request_id)


def _complete(platform: Platform, request_id: int) -> dict[str, Any]:
    """Close the request: its receipt lists every audit entry about it, by hash."""
    with platform.catalog.session() as session:
        request = session.get(DeletionRequest, request_id)
        assert request is not None
        hashes = session.scalars(select(AuditEntry.entry_sha256).where(
            AuditEntry.target == f"deletion:{request_id}").order_by(AuditEntry.id)).all()
        receipt = {**request.receipt, "audit_entries_sha256": list(hashes)}
        request.receipt, request.status = receipt, "completed"
    return receipt


def record_intent(platform: Platform, collection: Collection, request: DeletionRequest,
                  progress: _Progress) -> None:
    """Step 1: pending tombstones for every selected pair not yet tombstoned."""
    selector = DeletionSelector.from_dict(request.selector)
    selected = _selected_ids(platform, collection, selector)
    with platform.catalog.session() as session:
        known = set(session.scalars(select(Tombstone.anchor_id).where(
            Tombstone.request_id == request.id)))
        for start in range(0, len(selected), _CHUNK):
            chunk = [i for i in selected[start : start + _CHUNK] if i not in known]
            for anchor in session.scalars(select(Anchor).where(Anchor.id.in_(chunk))):
                session.add(Tombstone(anchor_id=anchor.id, collection_id=collection.id,
                                      request_id=request.id, image_sha256=anchor.image_sha256,
                                      caption_sha256=anchor.caption_sha256, state="pending"))
        row = session.get(DeletionRequest, request.id)
        assert row is not None
        row.status = "applying"
        progress.ids = sorted(session.scalars(select(Tombstone.anchor_id).where(
            Tombstone.request_id == request.id, Tombstone.state == "pending")))
    audit(
        platform, "deletion.intent", f"deletion:{request.id}",
        details={"pairs": len(progress.ids), "ids_sha256": _sha256(progress.ids)})


def delete_points(platform: Platform, progress: _Progress) -> None:
    """Step 2: keep the points' vectors for verification, then delete them in Qdrant."""
    for start in range(0, len(progress.ids), _CHUNK):
        chunk = progress.ids[start : start + _CHUNK]
        for point_id, point in platform.store.retrieve(progress.collection, chunk,
                                                       with_vectors=True).items():
            progress.vectors[point_id] = (point["image"], point["text"])
        platform.store.delete(progress.collection, chunk)
    audit(
        platform, "deletion.qdrant_delete", f"deletion:{progress.request_id}",
        details={"pairs": len(progress.ids)})


def verify_deleted(platform: Platform, collection: Collection, progress: _Progress) -> None:
    """Step 3: nothing retrievable, and no deleted pair found by its own vectors.

    Vectors of points deleted before a crash are re-encoded from the catalog rows,
    which step 4 has not dropped yet.
    """
    deleted = set(progress.ids)
    still_there = []
    for start in range(0, len(progress.ids), _CHUNK):
        still_there += list(platform.store.retrieve(progress.collection,
                                                    progress.ids[start : start + _CHUNK]))
    images, texts = _verification_vectors(platform, collection, progress)
    found: set[int] = set()
    for vector_name, vectors in (("image", images), ("text", texts)):
        if len(vectors):
            for result in platform.store.search(progress.collection, vector_name, vectors,
                                                collection.default_k, exact=True):
                found.update(set(result.ids.tolist()) & deleted)
    progress.verification = {
        "retrievable_after_delete": len(still_there),
        "image_queries": len(images), "caption_queries": len(texts),
        "deleted_ids_found_by_own_vectors": len(found), "top_k": collection.default_k,
        "passed": not still_there and not found,
    }
    audit(
        platform, "deletion.verify", f"deletion:{progress.request_id}",
        details=progress.verification)
    if still_there or found:
        raise AnchorStoreError(
            f"deletion request {progress.request_id}: {len(still_there)} points still "
            f"retrievable and {len(found)} found by their own vectors after deleting; "
            "nothing was finalized; run `asif deletion apply` again"
        )


def _verification_vectors(platform: Platform, collection: Collection,
                          progress: _Progress) -> tuple[np.ndarray, np.ndarray]:
    missing = [i for i in progress.ids if i not in progress.vectors]
    images = [progress.vectors[i][0] for i in progress.ids if i in progress.vectors]
    texts = [progress.vectors[i][1] for i in progress.ids if i in progress.vectors]
    if missing:
        from asif_platform.encoders import load_image
        from asif_platform.errors import EncoderError

        image_encoder, text_encoder = platform.encoders_for(collection)
        with platform.catalog.session() as session:
            rows = session.scalars(select(Anchor).where(Anchor.id.in_(missing))).all()
        texts += list(text_encoder.encode([row.caption for row in rows]))
        for row in rows:
            try:
                images.append(image_encoder.encode([load_image(row.image_ref)])[0])
            except EncoderError:
                logger.warning("anchor %d: image unreadable, verified by caption only", row.id)
    dim_i, dim_t = collection.image_dim, collection.text_dim
    return (np.asarray(images, np.float32).reshape(-1, dim_i),
            np.asarray(texts, np.float32).reshape(-1, dim_t))


def finalize(platform: Platform, collection: Collection, request: DeletionRequest,
             progress: _Progress) -> None:
    """Step 4, one transaction: redactions, rows dropped, tombstones final, receipt."""
    now = utcnow()
    with platform.catalog.session() as session:
        redacted: dict[str, int] = {}
        for start in range(0, len(progress.ids), _CHUNK):
            chunk = progress.ids[start : start + _CHUNK]
            for version_id, name, anchor_id in session.execute(
                select(Version.id, Version.name, VersionMember.anchor_id).join(VersionMember)
                .where(VersionMember.anchor_id.in_(chunk))
            ):
                session.add(VersionRedaction(version_id=version_id, anchor_id=anchor_id,
                                             request_id=request.id))
                redacted[name] = redacted.get(name, 0) + 1
            session.query(VersionMember).filter(VersionMember.anchor_id.in_(chunk)).delete()
            session.query(Anchor).filter(Anchor.id.in_(chunk)).delete()
            session.query(Tombstone).filter(Tombstone.anchor_id.in_(chunk)).update(
                {"state": "deleted", "deleted_at": now})
        removed = sorted(session.scalars(select(Tombstone.anchor_id).where(
            Tombstone.request_id == request.id)))
        collection_row = session.get(Collection, collection.id)
        assert collection_row is not None
        collection_row.revision += 1
        append_entry(
            session, platform.settings.principal, "deletion.finalize", f"deletion:{request.id}",
            details={"pairs": len(progress.ids), "versions_redacted": redacted})
        row = session.get(DeletionRequest, request.id)
        assert row is not None
        receipt = {
            "request": request.id, "collection": collection.name,
            "selector_sha256": request.selector_sha256, "legal_basis": request.legal_basis,
            "requested_at": _iso(request.created_at), "completed_at": now.isoformat(),
            "deadline": _iso(request.deadline), "pairs_removed": len(removed),
            "removed_ids": [str(i) for i in removed], "versions_redacted": redacted,
            "verification": progress.verification,
        }
        row.status, row.completed_at, row.receipt = "finalized", now, receipt
        # The selector can hold what was deleted (caption text, record ids): only its
        # hash stays, in the request, the receipt and the audit log.
        row.selector = {}
    logger.info("deletion request %d finalized: %d pairs", request.id, len(removed))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def purge(platform: Platform, collection_name: str, request_id: int) -> None:
    """Step 5: rewrite the store without deleted points; vacuum the catalog."""
    platform.store.compact(collection_name)
    clear_text_cache(platform.settings.home, collection_name)
    purge_catalog(platform)
    audit(platform, "deletion.purge", f"deletion:{request_id}",
          details={"collection": collection_name})


def purge_catalog(platform: Platform) -> None:
    """Reclaim the space of deleted rows so their content leaves the database files."""
    engine = platform.catalog.engine
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(text("VACUUM"))
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        elif engine.dialect.name == "postgresql":
            connection.execute(text("VACUUM FULL anchors"))
            connection.execute(text("VACUUM FULL version_members"))


def request_status(platform: Platform, request_id: int) -> dict[str, Any]:
    request, collection = _request(platform, request_id)
    with platform.catalog.session() as session:
        states = dict(session.execute(select(Tombstone.state, func.count()).where(
            Tombstone.request_id == request_id).group_by(Tombstone.state)).all())
    return {"request": request_id, "collection": collection.name, "status": request.status,
            "legal_basis": request.legal_basis, "deadline": _iso(request.deadline),
            "created_at": _iso(request.created_at), "completed_at": _iso(request.completed_at),
            "tombstones": states, "selector_sha256": request.selector_sha256}
