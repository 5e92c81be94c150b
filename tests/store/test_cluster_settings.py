"""Collections on a Qdrant server or cluster get the configured shards and replicas.

The in-process client accepts and ignores both parameters, so the test spies on the
create call that would go to the server.
"""

from __future__ import annotations

from typing import Any

import pytest
from qdrant_client import QdrantClient

from asif_platform.errors import ConfigError
from asif_platform.settings import Settings
from asif_platform.store import CollectionSchema, ServerAnchorStore, open_store


def test_shards_and_replication_reach_create_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, Any]] = []
    original = QdrantClient.create_collection

    def spy(self: QdrantClient, collection_name: str, **kwargs: Any) -> bool:
        calls.append(kwargs)
        return original(self, collection_name, **kwargs)

    monkeypatch.setattr(QdrantClient, "create_collection", spy)
    settings = Settings.from_env(
        {
            "ASIF_QDRANT_URL": ":memory:",
            "ASIF_QDRANT_SHARDS": "6",
            "ASIF_QDRANT_REPLICATION": "2",
        }
    )
    store = open_store(settings)
    assert isinstance(store, ServerAnchorStore)
    store.create(CollectionSchema(name="pets", image_dim=4, text_dim=3))

    assert calls[0]["shard_number"] == 6 and calls[0]["replication_factor"] == 2
    assert store.describe("pets") == {"image": 4, "text": 3}
    store.close()


def test_unset_shards_leave_the_server_default() -> None:
    store = open_store(Settings.from_env({"ASIF_QDRANT_URL": ":memory:"}))
    assert isinstance(store, ServerAnchorStore)
    assert store.shard_number is None and store.replication_factor is None
    store.close()


@pytest.mark.parametrize("raw", ["0", "-1", "three"])
def test_shards_must_be_positive_integers(raw: str) -> None:
    with pytest.raises(ConfigError, match="ASIF_QDRANT_SHARDS"):
        Settings.from_env({"ASIF_QDRANT_SHARDS": raw})
