"""Ingestion into the catalog and the anchor store, including failures mid-way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crashes import fail_second_commit
from fakes import FakeImageEncoder, fake_loader
from sqlalchemy import func, select

from asif_platform.catalog import Anchor, IngestRun
from asif_platform.errors import AnchorStoreError, EncoderError
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform


def catalog_count(platform: Platform) -> int:
    with platform.catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(Anchor)) or 0)


def test_ingest_adds_every_pair_once(platform: Platform, pair_folder: Path) -> None:
    platform.create_collection("colours")
    report = ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert report.records_read == 48
    assert report.pairs_added == 48
    assert report.images_encoded == 24  # each image once, though it has two captions
    assert platform.store.count("colours") == 48
    assert catalog_count(platform) == 48

    again = ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert (again.pairs_added, again.already_present, again.images_encoded) == (0, 48, 0)
    assert platform.store.count("colours") == 48

    with platform.catalog.session() as session:
        runs = session.scalars(select(IngestRun).order_by(IngestRun.id)).all()
        anchor = session.scalars(select(Anchor).limit(1)).one()
    assert [run.status for run in runs] == ["completed", "completed"]
    assert runs[0].counts["pairs_added"] == 48
    assert len(anchor.image_sha256) == len(anchor.caption_sha256) == 64
    assert anchor.source_dataset == "pairs"
    assert anchor.image_fingerprint == FakeImageEncoder().fingerprint


def test_bad_records_are_counted_named_and_skipped(platform: Platform, pair_folder: Path) -> None:
    (pair_folder / "corrupt.jpg").write_bytes(b"not a jpeg at all")
    rows = [
        {"image": "red0.png", "caption": "   "},
        {"image": "missing.png", "caption": "a ghost"},
        {"image": "corrupt.jpg", "caption": "a broken file"},
        {"image": "red0.png", "caption": "x" * 5000},
        {"image": "red0.png", "caption": "a fine caption"},
        {"image": "red0.png", "caption": "a fine caption"},
    ]
    table = pair_folder / "bad.jsonl"
    table.write_text("\n".join(json.dumps(row) for row in rows))
    platform.create_collection("colours")

    report = ingest(platform, "colours", read_pairs(table))

    assert report.pairs_added == 1
    assert report.empty_captions.count == 1
    assert report.missing_images.count == 1
    assert report.missing_images.examples[0].endswith("missing.png")
    assert report.corrupt_images.count == 1
    assert report.oversized_captions.count == 1
    assert report.duplicate_pairs == 1
    assert platform.store.count("colours") == catalog_count(platform) == 1


def test_interrupted_ingest_completes_on_rerun(
    platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.create_collection("colours")
    store = platform.store
    real_upsert = store.upsert
    calls = {"n": 0}

    def flaky_upsert(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise AnchorStoreError("simulated crash during the Qdrant write")
        real_upsert(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "upsert", flaky_upsert)
    with pytest.raises(AnchorStoreError, match="simulated"):
        ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"), images_per_batch=5)
    assert catalog_count(platform) == 20  # two batches of 5 images, 2 captions each
    monkeypatch.setattr(store, "upsert", real_upsert)

    report = ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert (report.already_present, report.pairs_added) == (20, 28)
    assert store.count("colours") == catalog_count(platform) == 48
    with platform.catalog.session() as session:
        statuses = session.scalars(select(IngestRun.status).order_by(IngestRun.id)).all()
    assert statuses == ["failed", "completed"]


def test_crash_between_qdrant_write_and_catalog_commit(
    platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.create_collection("colours")
    fail_second_commit(platform, pair_folder, monkeypatch, process_dies=True)
    assert catalog_count(platform) == 10
    assert platform.store.count("colours") == 20  # batch two reached Qdrant only

    report = ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert report.pairs_added == 38
    assert platform.store.count("colours") == catalog_count(platform) == 48


def test_a_failed_catalog_commit_takes_its_batch_back_out_of_qdrant(
    platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that fails while the process lives leaves no point the catalog lacks:
    such a point would answer queries and no deletion request could reach it."""
    platform.create_collection("colours")
    fail_second_commit(platform, pair_folder, monkeypatch, process_dies=False)
    assert platform.store.count("colours") == catalog_count(platform) == 10

    report = ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert report.pairs_added == 38
    assert platform.store.count("colours") == catalog_count(platform) == 48


def test_collection_refuses_a_changed_encoder(
    platform: Platform, settings, pair_folder: Path
) -> None:
    platform.create_collection("colours")

    def changed_loader(identifier: str, modality: str):  # type: ignore[no-untyped-def]
        return FakeImageEncoder(side=8) if modality == "image" else fake_loader(identifier, modality)

    other = Platform(settings, encoder_loader=changed_loader)
    with pytest.raises(EncoderError, match="fingerprint"):
        ingest(other, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    other.close()
    assert platform.store.count("colours") == 0


def test_points_dropped_by_the_engine_are_an_error(
    platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.create_collection("colours")
    real_upsert = platform.store.upsert

    def dropping_upsert(name, ids, images, texts, payloads):  # type: ignore[no-untyped-def]
        real_upsert(name, ids[1:], images[1:], texts[1:], payloads[1:])  # loses one point

    monkeypatch.setattr(platform.store, "upsert", dropping_upsert)
    with pytest.raises(AnchorStoreError, match="missing on read-back"):
        ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert catalog_count(platform) == 0


def test_ingest_indexes_what_it_wrote(
    platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Qdrant Edge has no background optimizer: an ingest builds the index itself
    (HNSW graphs, int8 copies), even when a rerun finds nothing new."""
    platform.create_collection("colours", quantization="int8")
    optimized: list[str] = []
    real_optimize = platform.store.optimize
    monkeypatch.setattr(platform.store, "optimize",
                        lambda name: (optimized.append(name), real_optimize(name)))
    ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    report = ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert optimized == ["colours", "colours"] and "index" in report.seconds
