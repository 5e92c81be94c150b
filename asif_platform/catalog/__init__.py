"""The SQL catalog: collections, anchors, ingest runs, and their migrations."""

from __future__ import annotations

from asif_platform.catalog.database import (
    MIGRATIONS_DIR,
    Catalog,
    alembic_config,
    current_revision,
    head_revision,
    unstorable,
    upgrade,
)
from asif_platform.catalog.models import (
    Anchor,
    ApiKey,
    AuditEntry,
    Base,
    Collection,
    DeletionRequest,
    Experiment,
    IngestRun,
    Membership,
    Team,
    Tombstone,
    Version,
    VersionMember,
    VersionRedaction,
    utcnow,
)

__all__ = [
    "MIGRATIONS_DIR",
    "Anchor",
    "ApiKey",
    "AuditEntry",
    "Base",
    "Catalog",
    "Collection",
    "DeletionRequest",
    "Experiment",
    "IngestRun",
    "Membership",
    "Team",
    "Tombstone",
    "Version",
    "VersionMember",
    "VersionRedaction",
    "alembic_config",
    "current_revision",
    "head_revision",
    "unstorable",
    "upgrade",
    "utcnow",
]
