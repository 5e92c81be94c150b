"""The audit log: append-only and hash-chained, so tampering is evident.

Each entry stores the sha256 of the previous entry and its own sha256 over its
fields and that link; editing, inserting or deleting an entry breaks every later
link. The application only ever inserts. Entries carry ids, hashes and counts, never
captions, image bytes or personal details of the people a request is about.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from asif_platform.catalog import AuditEntry, Collection, DeletionRequest, Membership, utcnow

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["GENESIS", "ChainCheck", "append_entry", "audit", "entry_hash", "verify_chain",
           "visible_entries"]

logger = logging.getLogger(__name__)

GENESIS = "0" * 64


def entry_hash(entry: AuditEntry) -> str:
    at = entry.at if entry.at.tzinfo is None else entry.at.astimezone(UTC).replace(tzinfo=None)
    at_text = at.isoformat(timespec="microseconds")  # naive UTC, as SQLite returns it
    canonical = json.dumps(
        [at_text, entry.principal, entry.action, entry.target, entry.outcome, entry.details,
         entry.previous_sha256],
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def audit(
    platform: Platform,
    action: str,
    target: str,
    *,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> str:
    """Append one entry as the acting principal, in its own transaction; returns its hash."""
    with platform.catalog.session() as session:
        return append_entry(session, platform.settings.principal, action, target,
                            outcome=outcome, details=details)


def append_entry(
    session: Session,
    principal: str,
    action: str,
    target: str,
    *,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> str:
    """Append one entry inside the caller's transaction (committed with its change)."""
    last = session.scalar(
        select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1).with_for_update()
    )
    entry = AuditEntry(
        at=utcnow(), principal=principal, action=action, target=target, outcome=outcome,
        details=details or {}, previous_sha256=last.entry_sha256 if last else GENESIS,
    )
    entry.entry_sha256 = entry_hash(entry)
    session.add(entry)
    session.flush()
    logger.info("audit %s %s on %s", action, outcome, target)
    return entry.entry_sha256


@dataclass(frozen=True)
class ChainCheck:
    entries: int
    first_broken: int | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def verify_chain(platform: Platform) -> ChainCheck:
    """Recompute every link; name the first entry whose hash or link is wrong."""
    previous = GENESIS
    count = 0
    with platform.catalog.session() as session:
        for entry in session.scalars(select(AuditEntry).order_by(AuditEntry.id)).yield_per(1000):
            count += 1
            if entry.previous_sha256 != previous:
                return ChainCheck(count, entry.id, "its link does not match the previous entry")
            if entry_hash(entry) != entry.entry_sha256:
                return ChainCheck(count, entry.id, "its content does not match its hash")
            previous = entry.entry_sha256
    return ChainCheck(count, None)


def visible_entries(
    platform: Platform, *, collection: str | None = None, last: int = 20
) -> list[AuditEntry]:
    """The latest entries the principal may read, oldest first.

    An owner of a collection reads the entries about it and its deletion requests;
    everyone reads the entries of their own actions. Entries about other teams'
    collections stay hidden.

    Args:
        collection: Only the entries about this collection (needs its owner role).
        last: How many entries. Defaults to 20.
    """
    principal = platform.settings.principal
    with platform.catalog.session() as session:
        if collection is not None:
            collection_ids = [platform.get_collection(collection, "admin").id]
        else:
            owned = select(Membership.team_id).where(
                Membership.principal == principal, Membership.role == "owner"
            )
            collection_ids = list(session.scalars(select(Collection.id).where(
                or_(Collection.team_id.is_(None), Collection.team_id.in_(owned))
            )))
        names = session.scalars(select(Collection.name).where(Collection.id.in_(collection_ids)))
        requests = session.scalars(select(DeletionRequest.id).where(
            DeletionRequest.collection_id.in_(collection_ids)))
        targets = [f"collection:{name}" for name in names]
        targets += [f"deletion:{request}" for request in requests]
        condition = AuditEntry.target.in_(targets)
        if collection is None:
            condition = or_(condition, AuditEntry.principal == principal)
        entries = session.scalars(
            select(AuditEntry).where(condition).order_by(AuditEntry.id.desc()).limit(last)
        ).all()
        session.expunge_all()
    return list(reversed(entries))
