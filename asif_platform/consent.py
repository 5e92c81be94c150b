"""Consent changes: revoke or grant pairs, hiding or restoring them at once.

Qdrant is written first, then the catalog: a crash in between leaves the pairs
hidden (the payload already says revoked) while the catalog still says otherwise,
which is the safe side; running the same command again, or ``asif doctor
--repair``, brings the two back in line.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from asif_platform.audit import audit
from asif_platform.catalog import Anchor, Collection, Version, VersionMember, utcnow
from asif_platform.errors import ConfigError
from asif_platform.ingest.payload import anchor_payload
from asif_platform.provenance import CONSENT_BASES, CONSENT_STATUSES

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["ConsentChange", "PairSelector", "change_consent", "select_anchor_ids"]

logger = logging.getLogger(__name__)

_CHUNK = 900


@dataclass(frozen=True)
class PairSelector:
    """Which pairs of a collection: any pair matching any of the given criteria."""

    anchor_ids: tuple[int, ...] = ()
    source_record_ids: tuple[str, ...] = ()
    source_datasets: tuple[str, ...] = ()
    image_sha256s: tuple[str, ...] = ()
    image_files: tuple[Path, ...] = ()

    def is_empty(self) -> bool:
        return not any(self.__dict__.values())

    def conditions(self) -> list[Any]:
        image_hashes = list(self.image_sha256s) + [
            hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in self.image_files
        ]
        found = []
        if self.anchor_ids:
            found.append(Anchor.id.in_(self.anchor_ids))
        if self.source_record_ids:
            found.append(Anchor.source_record_id.in_(self.source_record_ids))
        if self.source_datasets:
            found.append(Anchor.source_dataset.in_(self.source_datasets))
        if image_hashes:
            found.append(Anchor.image_sha256.in_(image_hashes))
        return found


@dataclass(frozen=True)
class ConsentChange:
    collection: str
    status: str
    pairs: int
    sample_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def select_anchor_ids(platform: Platform, collection: Collection,
                      selector: PairSelector) -> list[int]:
    if selector.is_empty():
        raise ConfigError("select pairs with at least one of --anchor-id, --record-id, "
                          "--source-dataset, --image-sha256 or --image-file")
    with platform.catalog.session() as session:
        return sorted(session.scalars(select(Anchor.id).where(
            Anchor.collection_id == collection.id, or_(*selector.conditions()))))


def change_consent(
    platform: Platform,
    collection_name: str,
    selector: PairSelector,
    status: str,
    *,
    basis: str | None = None,
    expires_at: datetime | None = None,
    evidence: str | None = None,
) -> ConsentChange:
    """Set the consent of the selected pairs; queries see it on their next call."""
    if status not in CONSENT_STATUSES:
        raise ConfigError(f"consent status must be one of {', '.join(CONSENT_STATUSES)}")
    if basis is not None and basis not in CONSENT_BASES:
        raise ConfigError(f"consent basis must be one of {', '.join(CONSENT_BASES)}")
    now = utcnow()
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)  # the catalog keeps UTC
    if status == "granted" and expires_at is not None and expires_at <= now:
        raise ConfigError(
            f"the expiry {expires_at.isoformat()} is already past: granted consent would "
            "be expired at once; give a future --expires, or record it as expired"
        )
    collection = platform.get_collection(collection_name, "write")
    ids = select_anchor_ids(platform, collection, selector)

    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        with platform.catalog.session() as session:
            anchors = session.scalars(select(Anchor).where(Anchor.id.in_(chunk))).all()
            versions: dict[int, list[str]] = {}
            for anchor_id, name in session.execute(
                select(VersionMember.anchor_id, Version.name)
                .join(Version, Version.id == VersionMember.version_id)
                .where(VersionMember.anchor_id.in_(chunk))
            ):
                versions.setdefault(anchor_id, []).append(name)
            for anchor in anchors:
                anchor.consent_status = status
                anchor.consent_recorded_at = now
                anchor.consent_basis = basis or anchor.consent_basis
                anchor.consent_expires_at = expires_at
                anchor.consent_evidence = evidence or anchor.consent_evidence
            # Qdrant first: if the commit below fails, the pairs are already hidden.
            platform.store.overwrite_payload(collection_name, {
                anchor.id: anchor_payload(anchor, versions.get(anchor.id, ()))
                for anchor in anchors
            })
            row = session.get(Collection, collection.id)
            assert row is not None
            row.revision += 1
    logger.info("consent of %d pairs in %s set to %s", len(ids), collection_name, status)
    audit(platform, f"consent.{status}", f"collection:{collection_name}",
          details={"pairs": len(ids), "anchor_ids_sha256": _ids_digest(ids)})
    return ConsentChange(collection_name, status, len(ids), [str(i) for i in ids[:5]])


def _ids_digest(ids: list[int]) -> str:
    return hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()
