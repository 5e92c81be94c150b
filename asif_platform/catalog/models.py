"""SQLAlchemy models of the catalog, the source of truth about every anchor pair.

The schema is created and changed only by the Alembic migrations in
``asif_platform/migrations``; a test checks that these models and the migrated schema
do not differ.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Anchor",
    "ApiKey",
    "AuditEntry",
    "Base",
    "DeletionRequest",
    "Collection",
    "Experiment",
    "IngestRun",
    "Membership",
    "Team",
    "Tombstone",
    "Version",
    "VersionMember",
    "VersionRedaction",
    "utcnow",
]

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Collection(Base):
    """A named anchor collection: its encoders and its query defaults."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    image_encoder: Mapped[dict[str, Any]] = mapped_column(JSON)
    text_encoder: Mapped[dict[str, Any]] = mapped_column(JSON)
    image_fingerprint: Mapped[str] = mapped_column(String(64))
    text_fingerprint: Mapped[str] = mapped_column(String(64))
    image_dim: Mapped[int] = mapped_column(Integer)
    text_dim: Mapped[int] = mapped_column(Integer)
    default_k: Mapped[int] = mapped_column(Integer, default=800)
    default_p: Mapped[float] = mapped_column(Float, default=8.0)
    templates: Mapped[list[str]] = mapped_column(JSON)
    template_aggregation: Mapped[str] = mapped_column(String(16), default="mean")
    exact_search: Mapped[bool] = mapped_column(Boolean, default=True)
    hnsw_ef: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # How Qdrant indexes the vectors, fixed at creation; None for collections made
    # before revision 0006 recorded it.
    hnsw_m: Mapped[int | None] = mapped_column(Integer, nullable=True)
    hnsw_ef_construct: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quantization: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Bumped by every change to the collection's anchors; keys the query caches.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    # Query-time policy: {"exclude_consent": [...], "exclude_license_classes": [...]}.
    policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The owning team; None for collections made before teams existed (open to all).
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    anchors: Mapped[list[Anchor]] = relationship(back_populates="collection")


class IngestRun(Base):
    """One run of ``asif ingest``: what it read, what it added, what it skipped."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(Text)
    source_dataset: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="running")
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    image_fingerprint: Mapped[str] = mapped_column(String(64))
    text_fingerprint: Mapped[str] = mapped_column(String(64))
    platform_version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class Anchor(Base):
    """One image-caption pair of a collection; its id is the Qdrant point id."""

    __tablename__ = "anchors"
    __table_args__ = (
        Index("ix_anchors_collection_source", "collection_id", "source_record_id"),
        Index("ix_anchors_collection_image", "collection_id", "image_sha256"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    caption: Mapped[str] = mapped_column(Text)
    caption_sha256: Mapped[str] = mapped_column(String(64))
    image_ref: Mapped[str] = mapped_column(Text)
    image_sha256: Mapped[str] = mapped_column(String(64))
    source_dataset: Mapped[str] = mapped_column(String(200))
    source_record_id: Mapped[str] = mapped_column(Text)
    ingest_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("ingest_runs.id", ondelete="SET NULL"), nullable=True
    )
    image_fingerprint: Mapped[str] = mapped_column(String(64))
    text_fingerprint: Mapped[str] = mapped_column(String(64))
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ingested_by: Mapped[str] = mapped_column(String(200), default="")

    # Provenance.
    source_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    source_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    license: Mapped[str | None] = mapped_column(String(200), nullable=True)  # SPDX expression
    creator: Mapped[str | None] = mapped_column(Text, nullable=True)
    attribution: Mapped[str | None] = mapped_column(Text, nullable=True)

    # Consent: granted, revoked, unknown or expired; basis license, explicit or other.
    consent_status: Mapped[str] = mapped_column(String(16), default="unknown", index=True)
    consent_basis: Mapped[str | None] = mapped_column(String(16), nullable=True)
    consent_recorded_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    consent_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    consent_evidence: Mapped[str | None] = mapped_column(Text, nullable=True)

    collection: Mapped[Collection] = relationship(back_populates="anchors")


class Version(Base):
    """A frozen set of a collection's anchors, queried through Qdrant payload membership.

    Each member point carries the version's name in its indexed ``versions`` payload
    list; a query on the version filters on it. ``status`` is ``building`` until every
    member's payload is written, then ``ready``; only ready versions can be queried.
    """

    __tablename__ = "versions"
    __table_args__ = (UniqueConstraint("collection_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63))
    selector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    anchors: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="building")
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class VersionMember(Base):
    """One anchor of a version."""

    __tablename__ = "version_members"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    anchor_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("anchors.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Experiment(Base):
    """One recorded evaluation (``asif eval``) or grid search (``asif tune``)."""

    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("versions.id", ondelete="SET NULL"), nullable=True
    )
    image_fingerprint: Mapped[str] = mapped_column(String(64))
    text_fingerprint: Mapped[str] = mapped_column(String(64))
    templates: Mapped[list[str]] = mapped_column(JSON)
    template_aggregation: Mapped[str] = mapped_column(String(16))
    eval_set: Mapped[str] = mapped_column(Text)
    eval_set_sha256: Mapped[str] = mapped_column(String(64))
    images: Mapped[int] = mapped_column(Integer)
    k: Mapped[int] = mapped_column(Integer)
    p: Mapped[float] = mapped_column(Float)
    top1: Mapped[float] = mapped_column(Float)
    top5: Mapped[float] = mapped_column(Float)
    # Every setting evaluated, per-class accuracy and confusion of the best.
    results: Mapped[dict[str, Any]] = mapped_column(JSON)
    seconds: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Team(Base):
    """A group of principals that owns collections."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Membership(Base):
    """A principal's role in a team, which is its role on the team's collections."""

    __tablename__ = "memberships"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    principal: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # owner, editor or viewer


class AuditEntry(Base):
    """An append-only, hash-chained record of an action or a refusal.

    ``entry_sha256`` covers this entry's fields and ``previous_sha256``, so editing or
    deleting any entry breaks the chain from there on.
    """

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    principal: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(16))  # ok or refused
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    previous_sha256: Mapped[str] = mapped_column(String(64))
    entry_sha256: Mapped[str] = mapped_column(String(64), unique=True)


class DeletionRequest(Base):
    """A request to remove pairs: who asked (as a hash), why, by when, and what."""

    __tablename__ = "deletion_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="RESTRICT"), index=True
    )
    recorded_by: Mapped[str] = mapped_column(String(200))
    # sha256 of the requester's details; the details themselves are never stored.
    requester_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    legal_basis: Mapped[str] = mapped_column(String(100))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    selector: Mapped[dict[str, Any]] = mapped_column(JSON)
    selector_sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="requested")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    receipt: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Tombstone(Base):
    """What stays of a deleted pair: its id and hashes, never its content.

    Written as ``pending`` before anything is deleted (the intent), ``deleted`` once
    Qdrant and the catalog no longer hold the pair. Ingest refuses tombstoned ids, and
    ``asif doctor`` removes any that reappear in Qdrant (a restored snapshot).
    """

    __tablename__ = "tombstones"

    anchor_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[int] = mapped_column(
        ForeignKey("deletion_requests.id", ondelete="RESTRICT"), index=True
    )
    image_sha256: Mapped[str] = mapped_column(String(64))
    caption_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class VersionRedaction(Base):
    """A frozen version lost this pair to a deletion request."""

    __tablename__ = "version_redactions"

    version_id: Mapped[int] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), primary_key=True
    )
    anchor_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("deletion_requests.id", ondelete="RESTRICT"), index=True
    )


class ApiKey(Base):
    """A key the HTTP service accepts for one principal; only its sha256 is stored.

    A token reads ``asif_<prefix>_<secret>``: the public ``prefix`` finds the row, the
    sha256 of the whole token must then match ``key_sha256``. The token itself is
    shown once, when the key is created.
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    principal: Mapped[str] = mapped_column(String(200), index=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
