"""Anchor stores: embedded Qdrant Edge by default, a Qdrant server when a URL is set."""

from __future__ import annotations

from asif_platform.settings import Settings
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
from asif_platform.store.edge import EdgeAnchorStore
from asif_platform.store.server import ServerAnchorStore

__all__ = [
    "IMAGE_VECTOR",
    "PAYLOAD_INDEXES",
    "TEXT_VECTOR",
    "AnchorFilter",
    "AnchorStore",
    "CollectionSchema",
    "EdgeAnchorStore",
    "SearchResult",
    "ServerAnchorStore",
    "VectorName",
    "open_store",
    "validate_collection_name",
]


def open_store(settings: Settings) -> AnchorStore:
    """The store the settings name: a Qdrant server if ``qdrant_url`` is set, else Edge."""
    if settings.qdrant_url:
        return ServerAnchorStore.from_location(
            settings.qdrant_url,
            settings.qdrant_api_key,
            shard_number=settings.qdrant_shards,
            replication_factor=settings.qdrant_replication,
        )
    return EdgeAnchorStore(settings.qdrant_path)
