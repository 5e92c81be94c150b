"""``asif doctor``: compare the catalog with Qdrant, and repair Qdrant from the catalog.

The catalog is the source of truth. Per collection, the check finds:

- orphans: points in Qdrant the catalog does not know (an ingest that crashed between
  its Qdrant write and its catalog commit leaves these);
- missing points: catalog anchors without a point (deleted behind the catalog's back,
  or a lost Qdrant collection);
- payload drift: points whose payload differs from :func:`anchor_payload` of their row.

Reports name ids and payload field names only, never payload values or captions.

Repair deletes orphans and rewrites drifted payloads. A missing point is encoded again
from its catalog row (the caption, and the image file if it is still there with the
stored sha256) with the collection's own encoders, unless a deletion tombstoned it.
Where that is impossible, a re-run of the ingest that added it would skip it too (the
catalog already has the anchor), so repair deletes its catalog row instead, and the
next run of that ingest re-encodes it. Rows holding what a re-ingest cannot restore
are kept: members of frozen versions (deleting them would change the version) and
anchors whose consent was revoked or changed after their ingest.

Do not repair a collection while an ingest into it is running: a batch written to
Qdrant but not yet committed looks like orphans.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from sqlalchemy import and_, delete, or_, select

from asif_platform.audit import audit
from asif_platform.catalog import (
    Anchor,
    Collection,
    IngestRun,
    Tombstone,
    Version,
    VersionMember,
)
from asif_platform.encoders.preprocessing import load_image
from asif_platform.errors import EncoderError
from asif_platform.ingest.payload import anchor_payload
from asif_platform.ingest.pipeline import sha256_text

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["CollectionReport", "RepairReport", "check", "repair"]

logger = logging.getLogger(__name__)

_CHUNK = 900  # ids per SQL IN query and per Qdrant retrieve; below SQLite's limit
_ABSENT = object()


@dataclass
class CollectionReport:
    """How one collection's Qdrant points differ from its catalog rows.

    Attributes:
        collection: Collection name.
        catalog_anchors: Anchors in the catalog.
        qdrant_points: Points in Qdrant; None when the Qdrant collection is missing.
        missing_in_qdrant: Ids of catalog anchors without a point, ascending.
        orphans_in_qdrant: Ids of points without a catalog anchor, ascending.
        payload_drift: Anchor id -> names of the payload fields that differ.
        missing_ingest_runs: Ingest run id -> source, of the runs that added the
            missing anchors.
    """

    collection: str
    catalog_anchors: int
    qdrant_points: int | None
    missing_in_qdrant: list[int] = field(default_factory=list)
    orphans_in_qdrant: list[int] = field(default_factory=list)
    # Orphans that a deletion request removed (e.g. back from a restored snapshot).
    tombstoned_in_qdrant: list[int] = field(default_factory=list)
    payload_drift: dict[int, list[str]] = field(default_factory=dict)
    missing_ingest_runs: dict[int, str] = field(default_factory=dict)

    @property
    def qdrant_collection_missing(self) -> bool:
        return self.qdrant_points is None

    @property
    def consistent(self) -> bool:
        return not (
            self.qdrant_collection_missing
            or self.missing_in_qdrant
            or self.orphans_in_qdrant
            or self.payload_drift
        )

    def advice(self) -> list[str]:
        """What to do about each problem, in words."""
        found: list[str] = []
        if self.qdrant_collection_missing:
            found.append(
                f"the Qdrant collection {self.collection!r} is missing: check "
                "ASIF_QDRANT_URL or ASIF_HOME; repair leaves the catalog alone"
            )
        elif self.missing_in_qdrant:
            found.append(
                "`asif doctor --repair` deletes the catalog rows of the missing "
                "anchors (a re-run of an ingest skips anchors the catalog has); then "
                "re-run the ingest that added them to re-encode them: "
                f"{_runs_text(self.missing_ingest_runs)}"
            )
        if self.tombstoned_in_qdrant:
            found.append(
                f"{len(self.tombstoned_in_qdrant)} points were removed by deletion "
                "requests and are back (a restored snapshot?): `asif doctor --repair` "
                "deletes them again"
            )
        if self.orphans_in_qdrant:
            found.append("`asif doctor --repair` deletes the orphan points")
        if self.payload_drift:
            found.append("`asif doctor --repair` rewrites the drifted payloads")
        return found

    def to_dict(self) -> dict[str, Any]:
        # Ids as strings: 63-bit integers lose precision in many JSON readers.
        return {
            "collection": self.collection,
            "consistent": self.consistent,
            "catalog_anchors": self.catalog_anchors,
            "qdrant_points": self.qdrant_points,
            "qdrant_collection_missing": self.qdrant_collection_missing,
            "missing_in_qdrant": [str(i) for i in self.missing_in_qdrant],
            "orphans_in_qdrant": [str(i) for i in self.orphans_in_qdrant],
            "tombstoned_in_qdrant": [str(i) for i in self.tombstoned_in_qdrant],
            "payload_drift": [
                {"id": str(i), "fields": fields}
                for i, fields in self.payload_drift.items()
            ],
            "missing_ingest_runs": [
                {"run_id": run_id, "source": source}
                for run_id, source in self.missing_ingest_runs.items()
            ],
            "advice": self.advice(),
        }


@dataclass
class RepairReport:
    """What :func:`repair` changed in one collection.

    Attributes:
        collection: Collection name.
        orphans_deleted: Orphan points deleted from Qdrant.
        payloads_rewritten: Points whose payload was rewritten from the catalog.
        points_reencoded: Points missing from Qdrant, encoded again from their
            catalog row (caption, and the image file when its sha256 still matches).
        catalog_rows_deleted: Rows of anchors without a point that could not be
            re-encoded, deleted so that re-running their ingest re-encodes them.
        missing_left: Ids of anchors without a point that repair left as they are.
        advice: What is left to do, in words.
    """

    collection: str
    orphans_deleted: int = 0
    payloads_rewritten: int = 0
    catalog_rows_deleted: int = 0
    points_reencoded: int = 0
    missing_left: list[int] = field(default_factory=list)
    advice: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(
            self.orphans_deleted or self.payloads_rewritten or self.catalog_rows_deleted
            or self.points_reencoded
        )

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["missing_left"] = [str(i) for i in self.missing_left]
        return data


def check(
    platform: Platform, collection_name: str | None = None
) -> list[CollectionReport]:
    """Compare the catalog with Qdrant, for one collection or all of them.

    Args:
        platform: The platform whose catalog and store to compare.
        collection_name: The collection to check; None checks every one. Defaults
            to None.

    Returns:
        One report per collection, by name.

    Raises:
        NotFound: ``collection_name`` names no collection.
    """
    if collection_name is not None:
        names = [collection_name]
    else:
        names = [info.name for info in platform.list_collections()]  # visible ones
    return [
        _check_collection(platform, platform.get_collection(name)) for name in names
    ]


def _check_collection(platform: Platform, collection: Collection) -> CollectionReport:
    store = platform.store
    with platform.catalog.session() as session:
        catalog_ids = set(
            session.scalars(
                select(Anchor.id).where(Anchor.collection_id == collection.id)
            )
        )
    report = CollectionReport(collection.name, len(catalog_ids), qdrant_points=None)

    if not store.exists(collection.name):
        report.missing_in_qdrant = sorted(catalog_ids)
    else:
        qdrant_ids = {int(i) for i in store.list_ids(collection.name)}
        report.qdrant_points = store.count(collection.name)
        report.missing_in_qdrant = sorted(catalog_ids - qdrant_ids)
        report.orphans_in_qdrant = sorted(qdrant_ids - catalog_ids)
        with platform.catalog.session() as session:
            for chunk in _chunks(report.orphans_in_qdrant):
                report.tombstoned_in_qdrant += session.scalars(
                    select(Tombstone.anchor_id).where(Tombstone.anchor_id.in_(chunk)))
        report.tombstoned_in_qdrant.sort()
        for chunk in _chunks(sorted(catalog_ids & qdrant_ids)):
            expected = _expected_payloads(platform, collection, chunk)
            stored = store.retrieve(collection.name, chunk)
            for anchor_id in chunk:
                payload, point = expected.get(anchor_id), stored.get(anchor_id)
                # Either may have vanished since the ids were listed; skip those.
                if payload is None or point is None:
                    continue
                fields = _differing_fields(payload, point["payload"])
                if fields:
                    report.payload_drift[anchor_id] = fields
    report.missing_ingest_runs = _ingest_runs(platform, report.missing_in_qdrant)

    logger.info(
        "doctor checked %s: %d catalog anchors, %s Qdrant points, %d missing, "
        "%d orphans, %d drifted payloads",
        collection.name, report.catalog_anchors,
        "no" if report.qdrant_points is None else report.qdrant_points,
        len(report.missing_in_qdrant), len(report.orphans_in_qdrant),
        len(report.payload_drift),
    )
    return report


def repair(
    platform: Platform, report: CollectionReport, *, reingest_missing: bool = True
) -> RepairReport:
    """Make Qdrant agree with the catalog where the catalog has what it takes.

    Orphan points are deleted, and drifted payloads replaced whole by the catalog's
    (which drops fields the catalog does not define). Each id is checked again just
    before it is changed, so the report may be a little stale.

    Args:
        platform: The platform the report was made on.
        report: What :func:`check` found in the collection.
        reingest_missing: Delete the catalog rows of anchors without a point, so
            that re-running the ingest that added them re-encodes them; rows of
            version members and of anchors whose consent was revoked or changed
            after their ingest are kept. Defaults to True.

    Returns:
        What was changed, and what is left to do.

    Raises:
        NotFound: The collection no longer exists.
        PermissionDenied: The principal may not write to the collection.
    """
    result = RepairReport(report.collection)
    if report.qdrant_collection_missing:
        result.missing_left = list(report.missing_in_qdrant)
        result.advice = report.advice()
        return result
    collection = platform.get_collection(report.collection, "write")

    if report.orphans_in_qdrant:
        result.orphans_deleted = _delete_orphans(
            platform, collection, report.orphans_in_qdrant
        )
    if report.payload_drift:
        result.payloads_rewritten = _rewrite_payloads(
            platform, collection, sorted(report.payload_drift)
        )
    missing = list(report.missing_in_qdrant)
    if missing:
        result.points_reencoded, missing, deleting = _reencode_missing(
            platform, collection, missing
        )
        if deleting:
            # An interrupted deletion: its own re-run finishes these, not the doctor.
            result.advice.append(
                f"{len(deleting)} anchors without a point are being deleted; run "
                "`asif deletion apply` on their pending request to finish"
            )
    if missing and reingest_missing:
        result.catalog_rows_deleted, result.missing_left = _forget_missing(
            platform, collection, missing
        )
    elif missing:
        result.missing_left = missing

    if result.catalog_rows_deleted:
        result.advice.append(
            f"re-run the ingest that added the {result.catalog_rows_deleted} deleted "
            f"anchors ({_runs_text(report.missing_ingest_runs)}) to re-encode them"
        )
    if result.missing_left and reingest_missing:
        result.advice.append(
            f"{len(result.missing_left)} anchors without a point were kept in the "
            "catalog: they belong to frozen versions, or their consent was revoked "
            "or changed after their ingest, which a re-ingest would lose; restore "
            "their points from a Qdrant snapshot"
        )
    elif result.missing_left:
        result.advice.append(
            f"{len(result.missing_left)} anchors without a point were left; repair "
            "with reingest_missing=True deletes their rows for re-ingesting"
        )
    if result.changed:
        # Search results change with the points: invalidate the query caches.
        with platform.catalog.session() as session:
            row = session.get(Collection, collection.id)
            if row is not None:
                row.revision += 1
        audit(platform, "doctor.repair", f"collection:{collection.name}", details={
            "orphans_deleted": result.orphans_deleted,
            "payloads_rewritten": result.payloads_rewritten,
            "catalog_rows_deleted": result.catalog_rows_deleted,
            "points_reencoded": result.points_reencoded,
        })
    return result


def _delete_orphans(
    platform: Platform, collection: Collection, ids: Sequence[int]
) -> int:
    deleted = 0
    for chunk in _chunks(ids):
        with platform.catalog.session() as session:
            known = set(
                session.scalars(
                    select(Anchor.id).where(
                        Anchor.collection_id == collection.id, Anchor.id.in_(chunk)
                    )
                )
            )
        orphans = [i for i in chunk if i not in known]
        if orphans:
            platform.store.delete(collection.name, orphans)
            deleted += len(orphans)
    logger.info("doctor deleted %d orphan points from %s", deleted, collection.name)
    return deleted


def _rewrite_payloads(
    platform: Platform, collection: Collection, ids: Sequence[int]
) -> int:
    rewritten = 0
    for chunk in _chunks(ids):
        # Recomputed now, from the catalog as it is; a point or row gone since the
        # check is left to the next check.
        expected = _expected_payloads(platform, collection, chunk)
        present = platform.store.retrieve(collection.name, list(expected))
        payloads = {i: payload for i, payload in expected.items() if i in present}
        if payloads:
            platform.store.overwrite_payload(collection.name, payloads)
            rewritten += len(payloads)
    logger.info("doctor rewrote %d payloads in %s", rewritten, collection.name)
    return rewritten


def _reencode_missing(
    platform: Platform, collection: Collection, ids: Sequence[int]
) -> tuple[int, list[int]]:
    """Encode points missing from Qdrant again from their catalog rows.

    Only rows whose image file still has the stored sha256, whose caption still has
    its stored hash and that no deletion has tombstoned are restored, with the
    collection's own encoders (checked by fingerprint) and the catalog's payload.

    Returns:
        (points restored, ids still missing, ids left alone because a deletion
        tombstoned them).
    """
    image_encoder, text_encoder = platform.encoders_for(collection)
    restored = 0
    left: list[int] = []
    deleting: list[int] = []
    for chunk in _chunks(ids):
        present = platform.store.retrieve(collection.name, chunk)
        with platform.catalog.session() as session:
            tombstoned = set(session.scalars(
                select(Tombstone.anchor_id).where(Tombstone.anchor_id.in_(chunk))))
            rows = {row.id: row for row in session.scalars(select(Anchor).where(
                Anchor.collection_id == collection.id, Anchor.id.in_(chunk)))}
        usable, images = [], []
        for anchor_id in chunk:
            row = rows.get(anchor_id)
            if anchor_id in present or row is None:
                continue  # restored or removed since the check
            if anchor_id in tombstoned:
                deleting.append(anchor_id)
                continue
            image = _unchanged_image(row)
            if image is None or sha256_text(row.caption) != row.caption_sha256:
                left.append(anchor_id)
                continue
            usable.append(row)
            images.append(image)
        if not usable:
            continue
        payloads = _expected_payloads(platform, collection, [row.id for row in usable])
        platform.store.upsert(
            collection.name,
            [row.id for row in usable],
            image_encoder.encode(images),
            text_encoder.encode([row.caption for row in usable]),
            [payloads[row.id] for row in usable],
        )
        restored += len(usable)
    logger.info("doctor re-encoded %d missing points of %s; %d could not be",
                restored, collection.name, len(left))
    return restored, left, deleting


def _unchanged_image(row: Anchor) -> Image.Image | None:
    """The row's image, if its file is readable and still has the stored sha256."""
    try:
        data = Path(row.image_ref).read_bytes()
    except OSError:
        return None
    if hashlib.sha256(data).hexdigest() != row.image_sha256:
        return None
    try:
        return load_image(data)
    except EncoderError:
        return None


def _forget_missing(
    platform: Platform, collection: Collection, ids: Sequence[int]
) -> tuple[int, list[int]]:
    deleted = 0
    kept: list[int] = []
    for chunk in _chunks(ids):
        present = platform.store.retrieve(collection.name, chunk)
        missing = [i for i in chunk if i not in present]
        with platform.catalog.session() as session:
            keep = set(session.scalars(select(Anchor.id).where(
                Anchor.id.in_(missing), _kept_by_repair(),
            )))
            doomed = [i for i in missing if i not in keep]
            if doomed:
                session.execute(
                    delete(Anchor).where(
                        Anchor.collection_id == collection.id, Anchor.id.in_(doomed)
                    )
                )
        deleted += len(doomed)
        kept.extend(i for i in missing if i in keep)
    logger.info(
        "doctor deleted %d catalog rows without a point from %s for re-ingest; "
        "kept %d that a re-ingest cannot restore",
        deleted, collection.name, len(kept),
    )
    return deleted, kept


def _kept_by_repair() -> Any:
    """Rows holding what a re-ingest would not restore: never delete those."""
    return or_(
        # Deleting a member would change a frozen version.
        Anchor.id.in_(select(VersionMember.anchor_id)),
        # A re-ingest would forget a revocation, or any consent change made after
        # the ingest (which records consent at the moment it ingests).
        Anchor.consent_status == "revoked",
        and_(
            Anchor.consent_recorded_at.is_not(None),
            Anchor.consent_recorded_at != Anchor.ingested_at,
        ),
    )


def _expected_payloads(
    platform: Platform, collection: Collection, ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    with platform.catalog.session() as session:
        anchors = session.scalars(
            select(Anchor).where(
                Anchor.collection_id == collection.id, Anchor.id.in_(ids)
            )
        ).all()
        versions: dict[int, list[str]] = {}
        for anchor_id, name in session.execute(
            select(VersionMember.anchor_id, Version.name)
            .join(Version, Version.id == VersionMember.version_id)
            .where(
                Version.collection_id == collection.id, VersionMember.anchor_id.in_(ids)
            )
        ):
            versions.setdefault(anchor_id, []).append(name)
    return {
        anchor.id: anchor_payload(anchor, versions.get(anchor.id, ()))
        for anchor in anchors
    }


def _differing_fields(expected: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    return sorted(
        name
        for name in expected.keys() | stored.keys()
        if expected.get(name, _ABSENT) != stored.get(name, _ABSENT)
    )


def _ingest_runs(platform: Platform, ids: Sequence[int]) -> dict[int, str]:
    run_ids: set[int] = set()
    with platform.catalog.session() as session:
        for chunk in _chunks(ids):
            run_ids.update(
                run_id
                for run_id in session.scalars(
                    select(Anchor.ingest_run_id).where(Anchor.id.in_(chunk)).distinct()
                )
                if run_id is not None
            )
        runs = session.execute(
            select(IngestRun.id, IngestRun.source).where(
                IngestRun.id.in_(sorted(run_ids))
            )
        ).all()
    return {run_id: source for run_id, source in sorted(runs)}


def _runs_text(runs: dict[int, str]) -> str:
    if not runs:
        return "no ingest run is recorded for them"
    return ", ".join(
        f"run {run_id} from {source or 'an unnamed source'}"
        for run_id, source in runs.items()
    )


def _chunks(ids: Sequence[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield [int(i) for i in ids[start : start + _CHUNK]]
