"""``asif doctor`` on real faults: crashed ingests, lost points, drifted payloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from crashes import fail_second_commit
from fakes import fake_loader
from sqlalchemy import delete, func, select

import asif_platform.deletion as deletion
import asif_platform.doctor as doctor_module
import asif_platform.platform as platform_module
from asif_platform.catalog import Anchor, Collection, VersionMember
from asif_platform.cli import cli
from asif_platform.consent import PairSelector, change_consent
from asif_platform.deletion import DeletionSelector, apply_request, create_request
from asif_platform.doctor import CollectionReport, check, repair
from asif_platform.errors import NotFound
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.settings import Settings
from asif_platform.versions import create_version


def catalog_count(platform: Platform) -> int:
    with platform.catalog.session() as session:
        return int(session.scalar(select(func.count()).select_from(Anchor)) or 0)


def catalog_ids(platform: Platform) -> list[int]:
    with platform.catalog.session() as session:
        return sorted(session.scalars(select(Anchor.id)))


def revision(platform: Platform) -> int:
    with platform.catalog.session() as session:
        return session.scalars(select(Collection.revision)).one()


def hide_images(platform: Platform, ids: list[int]) -> None:
    """Move the image files of these anchors away: their points cannot be re-encoded."""
    with platform.catalog.session() as session:
        refs = set(session.scalars(select(Anchor.image_ref).where(Anchor.id.in_(ids))))
    for ref in refs:
        Path(ref).rename(ref + ".moved")


def only(reports: list[CollectionReport]) -> CollectionReport:
    assert len(reports) == 1
    return reports[0]


@pytest.fixture
def ingested(platform: Platform, pair_folder: Path) -> Platform:
    platform.create_collection("colours")
    pairs = pair_folder / "pairs.jsonl"
    ingest(platform, "colours", read_pairs(pairs), source=str(pairs))
    return platform


def test_clean_ingest_is_consistent(ingested: Platform) -> None:
    report = only(check(ingested))
    assert report.consistent, report.to_dict()
    assert (report.catalog_anchors, report.qdrant_points) == (48, 48)
    assert report.advice() == []
    assert only(check(ingested, "colours")).consistent
    with pytest.raises(NotFound):
        check(ingested, "nope")


def test_orphans_of_a_crashed_ingest_are_deleted(
    platform: Platform, pair_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.create_collection("colours")
    fail_second_commit(platform, pair_folder, monkeypatch, process_dies=True)

    report = only(check(platform))
    assert not report.consistent
    assert (report.catalog_anchors, report.qdrant_points) == (10, 20)
    assert len(report.orphans_in_qdrant) == 10
    assert not set(report.orphans_in_qdrant) & set(catalog_ids(platform))
    assert report.missing_in_qdrant == [] and report.payload_drift == {}

    before = revision(platform)
    repaired = repair(platform, report)
    assert repaired.orphans_deleted == 10 and repaired.advice == []
    assert revision(platform) == before + 1
    assert only(check(platform)).consistent
    assert platform.store.count("colours") == 10

    again = ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert (again.already_present, again.pairs_added) == (10, 38)
    assert platform.store.count("colours") == catalog_count(platform) == 48
    assert only(check(platform)).consistent


def test_lost_points_are_re_encoded_from_the_catalog(ingested: Platform) -> None:
    ids = catalog_ids(ingested)
    lost = ids[:5]
    before = ingested.store.retrieve("colours", lost, with_vectors=True)
    ingested.store.delete("colours", lost)
    # A deletion that recorded its intent (tombstones) but crashed after the Qdrant
    # delete must not be undone by the doctor.
    request = create_request(ingested, "colours", DeletionSelector(anchor_ids=(lost[0],)),
                             legal_basis="test")
    with pytest.raises(RuntimeError, match="crash"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(deletion, "verify_deleted", crash)
            apply_request(ingested, request)

    repaired = repair(ingested, only(check(ingested)))

    assert repaired.points_reencoded == 4 and repaired.catalog_rows_deleted == 0
    assert "being deleted" in repaired.advice[0]
    after = ingested.store.retrieve("colours", lost, with_vectors=True)
    assert lost[0] not in after
    for anchor_id in lost[1:]:
        np.testing.assert_allclose(after[anchor_id]["image"], before[anchor_id]["image"],
                                   atol=1e-6)
        # The fake text encoder adds 1e-3 at the row's batch position (a tie-breaker).
        np.testing.assert_allclose(after[anchor_id]["text"], before[anchor_id]["text"],
                                   atol=2e-3)
        assert after[anchor_id]["payload"] == before[anchor_id]["payload"]
    apply_request(ingested, request)  # the interrupted deletion still completes
    assert only(check(ingested)).consistent and catalog_count(ingested) == 47


def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
    raise RuntimeError("simulated crash")


def test_point_lost_behind_the_catalog_is_re_ingested_after_repair(
    ingested: Platform, pair_folder: Path
) -> None:
    lost = catalog_ids(ingested)[:3]
    ingested.store.delete("colours", lost)
    hide_images(ingested, lost)  # so they cannot be re-encoded from the catalog

    report = only(check(ingested))
    assert report.missing_in_qdrant == lost
    assert (report.catalog_anchors, report.qdrant_points) == (48, 45)
    (run_id, source), = report.missing_ingest_runs.items()
    assert source.endswith("pairs.jsonl")
    assert any(f"run {run_id}" in line and "re-run the ingest" in line
               for line in report.advice())

    # Re-running the ingest alone does not bring them back.
    rerun = ingest(ingested, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert rerun.pairs_added == 0
    assert only(check(ingested)).missing_in_qdrant == lost

    repaired = repair(ingested, only(check(ingested)))
    assert (repaired.catalog_rows_deleted, repaired.missing_left) == (3, [])
    assert f"run {run_id}" in repaired.advice[0]
    assert only(check(ingested)).consistent
    assert catalog_count(ingested) == 45

    for moved in pair_folder.glob("*.moved"):  # the images are back
        moved.rename(moved.with_suffix(""))
    again = ingest(ingested, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    assert (again.already_present, again.pairs_added) == (45, 3)
    assert ingested.store.count("colours") == catalog_count(ingested) == 48
    assert only(check(ingested)).consistent


def test_rows_a_re_ingest_cannot_restore_are_kept(ingested: Platform) -> None:
    ids = catalog_ids(ingested)
    create_version(ingested, "colours", "v1")
    with ingested.catalog.session() as session:  # two pairs ingested after v1
        session.execute(delete(VersionMember).where(VersionMember.anchor_id.in_(ids[:2])))
    ingested.store.set_payload("colours", ids[:2], {"versions": []})
    change_consent(ingested, "colours", PairSelector(anchor_ids=(ids[1],)), "granted")
    lost = ids[:4]  # not in v1, then: consent changed, member, member
    ingested.store.delete("colours", lost)
    hide_images(ingested, lost)

    repaired = repair(ingested, only(check(ingested)))

    assert (repaired.catalog_rows_deleted, repaired.missing_left) == (1, lost[1:])
    assert "frozen versions" in repaired.advice[1] and "consent" in repaired.advice[1]
    after = only(check(ingested))
    assert after.missing_in_qdrant == lost[1:] and after.payload_drift == {}


def test_repair_can_leave_missing_rows(ingested: Platform) -> None:
    lost = catalog_ids(ingested)[:1]
    ingested.store.delete("colours", lost)
    hide_images(ingested, lost)
    repaired = repair(ingested, only(check(ingested)), reingest_missing=False)
    assert (repaired.catalog_rows_deleted, repaired.missing_left) == (0, lost)
    assert catalog_count(ingested) == 48


def test_payload_drift_is_reported_by_field_and_rewritten(
    ingested: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    ids = catalog_ids(ingested)
    ingested.store.set_payload("colours", ids[:4], {"source_dataset": "wrong"})
    ingested.store.set_payload("colours", ids[4:6], {"stray": "x", "versions": ["v9"]})

    with caplog.at_level("INFO", logger="asif_platform.doctor"):
        report = only(check(ingested))
    assert report.payload_drift == {
        **{i: ["source_dataset"] for i in ids[:4]},
        **{i: ["stray", "versions"] for i in ids[4:6]},
    }
    assert report.missing_in_qdrant == report.orphans_in_qdrant == []
    # Names of fields, never their values, and never a caption.
    text = json.dumps(report.to_dict()) + caplog.text
    assert "wrong" not in text and "v9" not in text and "square" not in text

    repaired = repair(ingested, report)
    assert repaired.payloads_rewritten == 6
    assert only(check(ingested)).consistent
    stored = ingested.store.retrieve("colours", ids[4:6], with_vectors=True)
    assert all("stray" not in point["payload"] for point in stored.values())
    assert all(point["image"].shape == (48,) for point in stored.values())


def test_version_payloads_are_checked(ingested: Platform) -> None:
    create_version(ingested, "colours", "v1")
    assert only(check(ingested)).consistent
    member = catalog_ids(ingested)[0]
    ingested.store.set_payload("colours", [member], {"versions": []})
    assert only(check(ingested)).payload_drift == {member: ["versions"]}
    repair(ingested, only(check(ingested)))
    stored = ingested.store.retrieve("colours", [member])[member]["payload"]
    assert stored["versions"] == ["v1"]


def test_missing_qdrant_collection_is_reported_not_repaired(ingested: Platform) -> None:
    ingested.store.drop("colours")
    report = only(check(ingested))
    assert report.qdrant_collection_missing and report.qdrant_points is None
    assert len(report.missing_in_qdrant) == 48
    assert "is missing" in report.advice()[0]

    repaired = repair(ingested, report)
    assert not repaired.changed and len(repaired.missing_left) == 48
    assert catalog_count(ingested) == 48


def test_checks_work_in_chunks(
    ingested: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor_module, "_CHUNK", 7)
    ids = catalog_ids(ingested)
    ingested.store.set_payload("colours", ids[::5], {"image_sha256": "0"})
    ingested.store.delete("colours", ids[1::10])
    report = only(check(ingested))
    assert sorted(report.payload_drift) == [i for i in ids[::5] if i not in ids[1::10]]
    assert report.missing_in_qdrant == ids[1::10]
    repair(ingested, report)
    assert only(check(ingested)).consistent


# The command line


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(platform_module, "load_encoder",
                        lambda identifier, modality, threads=0: fake_loader(identifier, modality))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), obj={"settings": settings})

    return invoke


def test_cli_doctor(run, settings: Settings, pair_folder: Path) -> None:  # type: ignore[no-untyped-def]
    assert run("collection", "create", "colours").exit_code == 0
    assert run("ingest", "colours", str(pair_folder / "pairs.jsonl")).exit_code == 0

    clean = run("doctor", "--json")
    assert clean.exit_code == 0, clean.output
    assert json.loads(clean.output)["consistent"] is True
    text = run("doctor", "colours")
    assert text.exit_code == 0 and "colours: consistent" in text.output, text.output

    platform = Platform(settings, encoder_loader=fake_loader)  # type: ignore[arg-type]
    ids = catalog_ids(platform)
    platform.store.set_payload("colours", ids[:2], {"source_dataset": "wrong"})
    platform.close()

    drift = run("doctor", "colours", "--json")
    assert drift.exit_code == 1, drift.output
    data = json.loads(drift.output)
    assert data["consistent"] is False
    assert data["collections"][0]["payload_drift"] == [
        {"id": str(i), "fields": ["source_dataset"]} for i in ids[:2]
    ]
    text = run("doctor")
    assert text.exit_code == 1, text.output
    assert "payload drift: 2 in fields source_dataset" in text.output

    fixed = run("doctor", "--repair", "--json")
    assert fixed.exit_code == 0, fixed.output
    entry = json.loads(fixed.output)["collections"][0]
    assert entry["repaired"]["payloads_rewritten"] == 2
    assert entry["after"]["consistent"] is True
    assert run("doctor").exit_code == 0

    missing = run("doctor", "nope")
    assert missing.exit_code == 1 and "no collection named 'nope'" in missing.output
