"""Compliance deletion: apply, verification, crash recovery at every step, purge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import inspect, select, text

import asif_platform.deletion as deletion
from asif_platform.audit import verify_chain
from asif_platform.catalog import Anchor, AuditEntry, DeletionRequest, Tombstone, VersionRedaction
from asif_platform.deletion import DeletionSelector, apply_request, create_request, preview_request
from asif_platform.doctor import check, repair
from asif_platform.errors import ConfigError
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.versions import create_version, get_version

UNIQUE = "zebra-crossing-7f3a9c unique caption"


@pytest.fixture
def filled(platform: Platform, pair_folder: Path) -> Platform:
    platform.create_collection("colours", k=12, p=2.0, templates=["a {} square"])
    (pair_folder / "pairs.jsonl").write_text(
        (pair_folder / "pairs.jsonl").read_text()
        + json.dumps({"image": "red0.png", "caption": UNIQUE}) + "\n")
    ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    create_version(platform, "colours", "v1")
    return platform


def red0_request(platform: Platform) -> int:
    # Every caption of one picture, by source record id (rows 1, 2 and the last, 49).
    return create_request(platform, "colours", DeletionSelector(
        source_record_ids=("pairs.jsonl:1", "pairs.jsonl:2", "pairs.jsonl:49")),
        legal_basis="GDPR Art. 17", requester="someone@example.org")


def deleted_ids(platform: Platform) -> set[int]:
    with platform.catalog.session() as session:
        return set(session.scalars(select(Tombstone.anchor_id)))


def assert_fully_deleted(platform: Platform, ids: set[int]) -> None:
    assert len(ids) == 3
    assert platform.store.retrieve("colours", sorted(ids)) == {}
    assert platform.store.count("colours") == 46
    with platform.catalog.session() as session:
        assert not session.scalars(select(Anchor).where(Anchor.id.in_(ids))).all()
        assert set(session.scalars(select(Tombstone.state))) == {"deleted"}
    assert check(platform, "colours")[0].consistent


def test_apply_removes_verifies_and_never_brings_back(filled: Platform, pair_folder: Path) -> None:
    request_id = red0_request(filled)
    preview = preview_request(filled, request_id)
    assert preview["pairs"] == 3 and preview["by_version"] == {"v1": 3}
    assert "pairs_content" not in preview and UNIQUE not in json.dumps(preview)

    receipt = apply_request(filled, request_id)
    ids = deleted_ids(filled)
    assert_fully_deleted(filled, ids)
    assert receipt["pairs_removed"] == 3 and set(map(int, receipt["removed_ids"])) == ids
    assert receipt["verification"]["passed"] and receipt["verification"]["image_queries"] == 3
    assert receipt["versions_redacted"] == {"v1": 3} and len(receipt["audit_entries_sha256"]) == 7
    with filled.catalog.session() as session:
        assert len(session.scalars(select(VersionRedaction)).all()) == 3
        entries = session.scalars(select(AuditEntry)).all()
    assert not any(UNIQUE in json.dumps(e.details) or "someone@" in json.dumps(e.details)
                   for e in entries)
    assert verify_chain(filled).ok
    v1 = get_version(filled, "colours", "v1")
    assert v1.anchors == 49 and v1.redactions == {str(request_id): 3}  # frozen, redacted

    again = ingest(filled, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert again.previously_deleted == 3 and again.pairs_added == 0
    # Completed: the same receipt, marked as done earlier; no preview of what is gone.
    assert apply_request(filled, request_id) == {**receipt, "already_completed": True}
    with pytest.raises(ConfigError, match="is completed"):
        preview_request(filled, request_id)
    # Only the selector's hash stays: the record ids it named are erased.
    with filled.catalog.session() as session:
        request = session.get(DeletionRequest, request_id)
        assert request.selector == {} and request.selector_sha256 == receipt["selector_sha256"]


STEPS = ["record_intent", "delete_points", "verify_deleted", "finalize", "purge"]


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("when", ["before", "after"])
def test_a_crash_at_any_step_is_completed_by_applying_again(
    filled: Platform, monkeypatch: pytest.MonkeyPatch, step: str, when: str
) -> None:
    request_id = red0_request(filled)
    real = getattr(deletion, step)

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        if when == "after":
            real(*args, **kwargs)
        raise KeyboardInterrupt(f"killed {when} {step}")

    monkeypatch.setattr(deletion, step, crash)
    with pytest.raises(KeyboardInterrupt):
        apply_request(filled, request_id)
    monkeypatch.undo()

    receipt = apply_request(filled, request_id)
    assert receipt["pairs_removed"] == 3 and receipt["verification"]["passed"]
    assert_fully_deleted(filled, deleted_ids(filled))


def files_containing(platform: Platform, needle: bytes) -> list[str]:
    """Files of the embedded store and of a SQLite catalog (with its WAL) holding needle."""
    files = list(platform.settings.home.rglob("*"))
    database = platform.catalog.engine.url.database
    if platform.catalog.engine.dialect.name == "sqlite" and database:
        files += Path(database).parent.glob(Path(database).name + "*")
    return sorted({str(f) for f in files if f.is_file() and needle in f.read_bytes()})


def caption_rows(platform: Platform) -> int:
    """Rows of any catalog table whose text holds the unique caption (PostgreSQL)."""
    engine = platform.catalog.engine
    with engine.connect() as connection:
        return sum(
            connection.execute(text(
                f"SELECT count(*) FROM {table} AS t WHERE CAST(row_to_json(t) AS text) "
                "LIKE :needle"), {"needle": f"%{UNIQUE}%"}).scalar()
            for table in inspect(engine).get_table_names()
        )


def test_purge_leaves_no_trace_on_disk(filled: Platform) -> None:
    on_postgres = filled.catalog.engine.dialect.name == "postgresql"
    with filled.catalog.session() as session:
        anchor_id = session.scalar(select(Anchor.id).where(Anchor.caption == UNIQUE))
    # The caption's vector is its own (the image is shared with the picture's other pairs).
    vector = filled.store.retrieve("colours", [anchor_id], with_vectors=True)[anchor_id]["text"]
    needles = [vector.astype(np.float32).tobytes()]
    if not on_postgres:
        needles.append(UNIQUE.encode())
    for needle in needles:  # the test can see them before
        assert files_containing(filled, needle), needle
    if on_postgres:
        assert caption_rows(filled) == 1

    request_id = create_request(filled, "colours",
                                DeletionSelector(caption_contains=("zebra-crossing-7f3a9c",)),
                                legal_basis="consent withdrawn")
    assert apply_request(filled, request_id)["pairs_removed"] == 1
    for needle in needles:
        assert files_containing(filled, needle) == [], needle
    if on_postgres:
        assert caption_rows(filled) == 0


def test_doctor_reapplies_tombstones_after_a_restore(filled: Platform) -> None:
    request_id = red0_request(filled)
    with filled.catalog.session() as session:
        first = session.scalar(select(Anchor.id).where(Anchor.source_record_id == "pairs.jsonl:1"))
    snapshot = filled.store.retrieve("colours", [first], with_vectors=True)[first]
    apply_request(filled, request_id)
    # An old snapshot brings the point back.
    filled.store.upsert("colours", [first], snapshot["image"][None], snapshot["text"][None],
                        [snapshot["payload"]])
    report = check(filled, "colours")[0]
    assert report.tombstoned_in_qdrant == [first] and not report.consistent
    repair(filled, report)
    assert check(filled, "colours")[0].consistent
    assert filled.store.retrieve("colours", [first]) == {}


def test_requests_need_a_selector_and_a_basis(filled: Platform) -> None:
    with pytest.raises(ConfigError, match="at least one selector"):
        create_request(filled, "colours", DeletionSelector(), legal_basis="x")
    with pytest.raises(ConfigError, match="legal basis"):
        create_request(filled, "colours", DeletionSelector(anchor_ids=(1,)), legal_basis=" ")


def test_caption_text_is_a_literal_substring(filled: Platform) -> None:
    """'%' and '_' are not wildcards, and an empty text selects nothing: it is refused."""
    for text in ("%", "_", "d_g"):
        request = create_request(filled, "colours", DeletionSelector(caption_contains=(text,)),
                                 legal_basis="test")
        assert preview_request(filled, request)["pairs"] == 0, text
    with pytest.raises(ConfigError, match="empty caption text"):
        create_request(filled, "colours", DeletionSelector(caption_contains=(" ",)),
                       legal_basis="test")
    request = create_request(filled, "colours", DeletionSelector(caption_contains=("RED SQ",)),
                             legal_basis="test")
    assert preview_request(filled, request)["pairs"] == 6  # "a red square number 0..5"
