"""One contract, two stores: Qdrant Edge and qdrant-client's in-process mode."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from asif_platform.errors import AnchorStoreError, ConfigError, NotFound, SchemaMismatch
from asif_platform.store import (
    AnchorFilter,
    AnchorStore,
    CollectionSchema,
    EdgeAnchorStore,
    ServerAnchorStore,
)

SCHEMA = CollectionSchema(name="pairs", image_dim=12, text_dim=8)


@pytest.fixture(params=["edge", "client-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnchorStore]:
    if request.param == "edge":
        store: AnchorStore = EdgeAnchorStore(tmp_path / "qdrant")
    else:
        store = ServerAnchorStore.from_location(":memory:")
    yield store
    store.close()


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.normal(size=(n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


@pytest.fixture
def filled(store: AnchorStore) -> tuple[AnchorStore, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    ids = np.arange(1, 201, dtype=np.int64) * 7_919_000_000_003
    images, texts = unit_rows(rng, 200, 12), unit_rows(rng, 200, 8)
    payloads = [{"source_dataset": "even" if i % 2 == 0 else "odd", "image_sha256": f"h{i}"}
                for i in range(200)]
    store.create(SCHEMA)
    store.upsert("pairs", ids.tolist(), images, texts, payloads)
    return store, ids, images, texts


def test_create_and_describe(store: AnchorStore) -> None:
    assert not store.exists("pairs")
    store.create(SCHEMA)
    assert store.exists("pairs")
    assert store.describe("pairs") == {"image": 12, "text": 8}
    store.check_schema(SCHEMA)
    with pytest.raises(SchemaMismatch, match="other encoders"):
        store.check_schema(CollectionSchema(name="pairs", image_dim=12, text_dim=9))


def test_invalid_and_unknown_names(store: AnchorStore) -> None:
    with pytest.raises(ConfigError, match="invalid collection name"):
        store.exists("Bad Name!")
    with pytest.raises((NotFound, AnchorStoreError)):
        store.count("missing")


def test_upsert_count_retrieve(filled: tuple) -> None:
    store, ids, images, texts = filled
    assert store.count("pairs") == 200
    assert sorted(store.list_ids("pairs").tolist()) == sorted(ids.tolist())
    got = store.retrieve("pairs", [int(ids[3]), 12345], with_vectors=True)
    assert list(got) == [int(ids[3])]
    np.testing.assert_allclose(got[int(ids[3])]["image"], images[3], atol=1e-6)
    np.testing.assert_allclose(got[int(ids[3])]["text"], texts[3], atol=1e-6)
    assert got[int(ids[3])]["payload"] == {"source_dataset": "odd", "image_sha256": "h3"}


def test_upsert_is_idempotent(filled: tuple) -> None:
    store, ids, images, texts = filled
    store.upsert("pairs", ids[:10].tolist(), images[:10], texts[:10],
                 [{"source_dataset": "even", "image_sha256": "x"}] * 10)
    assert store.count("pairs") == 200


def test_wrong_vector_size_is_refused_and_loses_nothing(filled: tuple) -> None:
    store, ids, images, texts = filled
    with pytest.raises(AnchorStoreError, match="size 13 but the collection stores size 12"):
        store.upsert("pairs", [1], np.ones((1, 13), np.float32), texts[:1], [{}])
    with pytest.raises(AnchorStoreError, match="NaN"):
        store.upsert("pairs", [1], np.full((1, 12), np.nan, np.float32), texts[:1], [{}])
    assert store.count("pairs") == 200


def test_exact_search_matches_brute_force(filled: tuple) -> None:
    store, ids, images, _ = filled
    queries = unit_rows(np.random.default_rng(1), 5, 12)
    results = store.search("pairs", "image", queries, 20, exact=True)
    similarities = queries @ images.T  # (5, 200)
    for row, result in enumerate(results):
        expected = np.argsort(-similarities[row])[:20]
        assert result.ids.tolist() == ids[expected].tolist()
        np.testing.assert_allclose(result.scores, similarities[row, expected], atol=1e-5)
        assert (np.diff(result.scores) <= 1e-7).all()


def test_limit_larger_than_collection(filled: tuple) -> None:
    store, *_ = filled
    results = store.search("pairs", "text", unit_rows(np.random.default_rng(2), 2, 8), 1000,
                           exact=True)
    assert [len(r.ids) for r in results] == [200, 200]


def test_filters(filled: tuple) -> None:
    store, ids, *_ = filled
    query = unit_rows(np.random.default_rng(3), 1, 12)
    odd_only = AnchorFilter(must_match={"source_dataset": ["odd"]})
    result = store.search("pairs", "image", query, 300, exact=True, anchor_filter=odd_only)[0]
    assert set(result.ids.tolist()) == set(ids[1::2].tolist())
    excluded = AnchorFilter(must_not_match={"source_dataset": ["odd"]},
                            exclude_ids=[int(ids[0])])
    result = store.search("pairs", "image", query, 300, exact=True, anchor_filter=excluded)[0]
    assert set(result.ids.tolist()) == set(ids[2::2].tolist())


def test_delete(filled: tuple) -> None:
    store, ids, images, _ = filled
    store.delete("pairs", ids[:50].tolist())
    assert store.count("pairs") == 150
    assert store.retrieve("pairs", ids[:50].tolist()) == {}
    hits = store.search("pairs", "image", images[:50], 10, exact=True)
    assert not set(np.concatenate([h.ids for h in hits]).tolist()) & set(ids[:50].tolist())


def test_drop(filled: tuple) -> None:
    store, *_ = filled
    store.drop("pairs")
    assert not store.exists("pairs")


def test_edge_shard_persists_across_reopen(tmp_path: Path) -> None:
    store = EdgeAnchorStore(tmp_path / "qdrant")
    rng = np.random.default_rng(4)
    store.create(SCHEMA)
    store.upsert("pairs", [1, 2, 3], unit_rows(rng, 3, 12), unit_rows(rng, 3, 8), [{}] * 3)
    store.close()
    reopened = EdgeAnchorStore(tmp_path / "qdrant")
    assert reopened.count("pairs") == 3
    assert reopened.describe("pairs") == {"image": 12, "text": 8}
    reopened.close()


def test_payload_membership_filters_searches(filled) -> None:  # type: ignore[no-untyped-def]
    store, ids, images, _ = filled
    store.ensure_payload_index("pairs", "versions")
    store.ensure_payload_index("pairs", "versions")  # idempotent
    store.set_payload("pairs", ids[:50].tolist(), {"versions": ["v1"]})
    store.set_payload("pairs", ids[:10].tolist(), {"versions": ["v1", "v2"]})
    only_v1 = AnchorFilter(must_match={"versions": ["v1"]})
    result = store.search("pairs", "image", images[60:61], 200, exact=True, anchor_filter=only_v1)[0]
    assert set(result.ids.tolist()) == set(ids[:50].tolist())
    result = store.search("pairs", "image", images[:1], 200, exact=True,
                          anchor_filter=AnchorFilter(must_match={"versions": ["v2"]}))[0]
    assert set(result.ids.tolist()) == set(ids[:10].tolist())
    # Other payload fields are kept.
    assert store.retrieve("pairs", [int(ids[0])])[int(ids[0])]["payload"]["source_dataset"] == "even"


def test_expired_anchors_are_filtered_out(filled) -> None:  # type: ignore[no-untyped-def]
    store, ids, images, _ = filled
    store.set_payload("pairs", ids[:5].tolist(), {"consent_expires": 1_000.0})
    store.set_payload("pairs", ids[5:10].tolist(), {"consent_expires": 3_000.0})
    at_2000 = AnchorFilter(expired_at=2_000.0)
    result = store.search("pairs", "image", images[:1], 200, exact=True, anchor_filter=at_2000)[0]
    assert set(result.ids.tolist()) == set(ids[5:].tolist())  # no expiry = never expires
    both = at_2000.merged(AnchorFilter(must_not_match={"source_dataset": ["odd"]}))
    result = store.search("pairs", "image", images[:1], 200, exact=True, anchor_filter=both)[0]
    assert set(result.ids.tolist()) == set(ids[6::2].tolist())


def test_overwrite_payload_replaces_every_field(filled) -> None:  # type: ignore[no-untyped-def]
    store, ids, _, _ = filled
    first, second = int(ids[0]), int(ids[1])
    store.overwrite_payload("pairs", {first: {"consent_status": "revoked"},
                                      second: {"source_dataset": "other"}})
    points = store.retrieve("pairs", [first, second])
    assert points[first]["payload"] == {"consent_status": "revoked"}
    assert points[second]["payload"] == {"source_dataset": "other"}


def test_a_second_edge_store_is_refused_without_harming_the_first(tmp_path: Path) -> None:
    """One process per embedded shard: the second is refused before touching it."""
    rng = np.random.default_rng(3)
    first = EdgeAnchorStore(tmp_path / "qdrant")
    first.create(SCHEMA)
    first.upsert("pairs", [1, 2], unit_rows(rng, 2, 12), unit_rows(rng, 2, 8), [{}, {}])
    other = EdgeAnchorStore(tmp_path / "qdrant")
    with pytest.raises(AnchorStoreError, match="open in another process"):
        other.count("pairs")
    first.upsert("pairs", [3], unit_rows(rng, 1, 12), unit_rows(rng, 1, 8), [{}])
    assert first.count("pairs") == 3
    first.close()
    assert other.count("pairs") == 3  # free once the first store is closed
    other.close()


def test_int8_collection_rescores_with_the_originals(store: AnchorStore) -> None:
    """Quantized search ranks with int8 copies, then rescores from float32: the
    returned similarities are the exact ones, and the top matches agree."""
    rng = np.random.default_rng(11)
    images, texts = unit_rows(rng, 300, 12), unit_rows(rng, 300, 8)
    schema = CollectionSchema(name="quantized", image_dim=12, text_dim=8, quantization="int8")
    store.create(schema)
    store.upsert("quantized", list(range(1, 301)), images, texts, [{}] * 300)
    queries = unit_rows(rng, 5, 12)

    results = store.search("quantized", "image", queries, 10, oversampling=3.0)

    expected = queries @ images.T
    for row, result in zip(expected, results, strict=True):
        np.testing.assert_allclose(result.scores, row[result.ids - 1], atol=1e-5)
        assert result.ids[0] - 1 == int(row.argmax())
