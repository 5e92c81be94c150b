"""The Qdrant payload of an anchor, derived from its catalog row in one place.

The catalog is the source of truth; the payload mirrors the fields that queries filter
on. Ingest writes it, consent and version changes rewrite it, and ``asif doctor``
compares it field by field.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from typing import Any

from asif_platform.catalog import Anchor
from asif_platform.provenance import license_class

__all__ = ["anchor_payload"]


def anchor_payload(anchor: Anchor, versions: Sequence[str] = ()) -> dict[str, Any]:
    """The payload an anchor's point must carry.

    Args:
        anchor: The catalog row.
        versions: Names of the frozen versions the anchor belongs to.
    """
    payload: dict[str, Any] = {
        "source_dataset": anchor.source_dataset,
        "image_sha256": anchor.image_sha256,
        "license_class": license_class(anchor.license),
        "consent_status": anchor.consent_status,
    }
    if anchor.consent_expires_at is not None:
        expires = anchor.consent_expires_at
        if expires.tzinfo is None:  # SQLite returns naive datetimes; they are UTC
            expires = expires.replace(tzinfo=UTC)
        payload["consent_expires"] = expires.timestamp()
    if versions:
        payload["versions"] = sorted(versions)
    return payload
