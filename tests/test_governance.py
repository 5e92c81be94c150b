"""Provenance, consent, query policies, teams and the audit log, end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import COLOURS
from fakes import fake_loader
from PIL import Image
from sqlalchemy import select, update

from asif_platform.audit import verify_chain, visible_entries
from asif_platform.catalog import Anchor, AuditEntry
from asif_platform.consent import PairSelector, change_consent
from asif_platform.errors import ConfigError, NotFound, PermissionDenied
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.provenance import Provenance, license_class, normalise_license
from asif_platform import teams

LABELS = list(COLOURS)


def as_principal(base: Platform, principal: str) -> Platform:
    """Another principal in the same process, sharing the open store and catalog
    (an embedded Qdrant shard is opened by one owner at a time)."""
    return Platform(replace(base.settings, principal=principal), store=base.store,
                    catalog=base.catalog, encoder_loader=fake_loader)  # type: ignore[arg-type]


@pytest.fixture
def filled(platform: Platform, pair_folder: Path) -> Platform:
    platform.create_collection("colours", k=12, p=2.0, templates=["a {} square"])
    ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"),
           provenance=Provenance(license="cc-by-4.0", consent_status="granted",
                                 consent_basis="license", source_version="2026.1"))
    return platform


def red_query(tmp_path: Path) -> Image.Image:
    Image.new("RGB", (16, 16), (225, 35, 35)).save(tmp_path / "q.png")
    return Image.open(tmp_path / "q.png").convert("RGB")


def test_licenses_are_validated_with_a_suggestion() -> None:
    assert normalise_license("cc-by-nc-sa-4.0") == "CC-BY-NC-SA-4.0"
    assert license_class("CC-BY-NC-4.0") == "non-commercial"
    assert license_class("MIT") == "commercial" and license_class(None) == "unknown"
    with pytest.raises(ConfigError, match="did you mean 'CC-BY-4.0'"):
        Provenance(license="CC-BY-40")
    with pytest.raises(ConfigError, match="consent status"):
        Provenance(consent_status="maybe")


def test_provenance_text_fields_are_checked_before_anything_is_stored() -> None:
    assert Provenance(source_version=2, creator="ann").source_version == "2"  # type: ignore[arg-type]
    for bad, problem in (({"creator": ["x"]}, "creator must be text, got list"),
                         ({"attribution": {"n": 1}}, "attribution must be text, got dict"),
                         ({"consent_evidence": True}, "must be text, got bool"),
                         ({"creator": "a\0b"}, "NUL"),
                         ({"source_version": "v" * 101}, "longer than 100"),
                         ({"source_url": "u" * 2001}, "longer than 2000")):
        with pytest.raises(ConfigError, match=problem):
            Provenance().with_record(bad)


def test_provenance_per_ingest_and_per_record(platform: Platform, pair_folder: Path) -> None:
    platform.create_collection("colours")
    rows = [json.loads(line) for line in (pair_folder / "pairs.jsonl").read_text().splitlines()]
    rows[0]["license"] = "CC-BY-NC-4.0"
    rows[1]["license"] = "Not-A-License"
    rows[2]["consent_status"] = "revoked"
    rows[4]["consent"] = "revoked"  # named as the --consent option
    rows[5]["consent"] = "maybe"
    rows[6]["creator"] = ["not", "text"]  # refused before Qdrant sees the pair
    rows[7]["caption"] = "a lone surrogate \ud800"  # JSON allows it; UTF-8 does not
    rows[8]["creator"] = "\ud800"
    (pair_folder / "with-columns.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    report = ingest(platform, "colours", read_pairs(pair_folder / "with-columns.jsonl"),
                    provenance=Provenance(license="MIT", creator="the tests",
                                          consent_status="granted"))
    assert report.pairs_added == 43
    assert report.invalid_provenance.count == 4
    assert report.unstorable_text.count == 1
    assert "Not-A-License" in report.invalid_provenance.examples[0]
    assert "'maybe'" in report.invalid_provenance.examples[1]
    assert "creator must be text" in report.invalid_provenance.examples[2]
    assert "creator is not valid Unicode" in report.invalid_provenance.examples[3]
    assert platform.store.count("colours") == 43
    with platform.catalog.session() as session:
        anchors = {a.source_record_id: a for a in session.scalars(select(Anchor))}
    first = anchors["with-columns.jsonl:1"]
    assert (first.license, first.creator, first.ingested_by) == ("CC-BY-NC-4.0", "the tests", "tester")
    assert anchors["with-columns.jsonl:3"].consent_status == "revoked"
    assert anchors["with-columns.jsonl:5"].consent_status == "revoked"
    assert anchors["with-columns.jsonl:4"].license == "MIT"
    point = platform.store.retrieve("colours", [first.id])[first.id]["payload"]
    assert point["license_class"] == "non-commercial" and point["consent_status"] == "granted"


def contributors(platform: Platform, tmp_path: Path, **options) -> set[int]:  # type: ignore[no-untyped-def]
    engine = platform.engine("colours")
    vector = engine.encode_images([red_query(tmp_path)])[0]
    explanations = engine.explain_vector(vector, LABELS, engine.options(**options), top=100)
    return {c.anchor_id for e in explanations for c in e.contributions}


def test_revoked_pairs_never_contribute_and_policies_apply_at_once(
    filled: Platform, tmp_path: Path
) -> None:
    cited = contributors(filled, tmp_path)
    with filled.catalog.session() as session:
        red_ids = set(session.scalars(select(Anchor.id).where(Anchor.caption.like("%red%"))))
    assert cited & red_ids

    change = change_consent(filled, "colours", PairSelector(anchor_ids=tuple(sorted(cited))[:3]),
                            "revoked", evidence="ticket-1")
    assert change.pairs == 3
    after = contributors(filled, tmp_path)
    assert not after & set(sorted(cited)[:3])  # the same engine, next query

    # Expiry: consent that ran out is excluded at query time, with no command run.
    soon = datetime.now(UTC) + timedelta(seconds=1)
    expiring = tuple(sorted(after)[:2])
    change_consent(filled, "colours", PairSelector(anchor_ids=expiring), "granted",
                   expires_at=soon)
    assert set(expiring) <= contributors(filled, tmp_path)
    import time
    time.sleep(1.2)
    assert not set(expiring) & contributors(filled, tmp_path)
    with pytest.raises(ConfigError, match="already past"):
        change_consent(filled, "colours", PairSelector(anchor_ids=expiring), "granted",
                       expires_at=soon)
    # A time without a zone is UTC (as the CLI's --expires 2027-06-30), not a crash.
    later = datetime.now() + timedelta(days=400)
    change_consent(filled, "colours", PairSelector(anchor_ids=expiring), "granted",
                   expires_at=later)
    assert set(expiring) <= contributors(filled, tmp_path)

    # A policy excludes a license class on the next query, without re-ingesting.
    with filled.catalog.session() as session:
        session.execute(update(Anchor).values(license="CC-BY-NC-4.0"))
    change_consent(filled, "colours", PairSelector(source_datasets=("pairs",)), "granted")
    assert contributors(filled, tmp_path)
    filled.set_policy("colours", {"exclude_license_classes": ["non-commercial"]})
    assert contributors(filled, tmp_path) == set()
    # Per call, a query can narrow further but never widen the collection's policy.
    filled.set_policy("colours", {})
    assert contributors(filled, tmp_path, policy={"exclude_consent": ["granted"]}) == set()


def test_text_side_cache_survives_policy_checks(filled: Platform, tmp_path: Path) -> None:
    engine = filled.engine("colours")
    vector = engine.encode_images([red_query(tmp_path)])
    engine.classify_vectors(vector, LABELS, engine.options())
    first = engine.text_queries
    engine.classify_vectors(vector, LABELS, engine.options())
    assert engine.text_queries == first


def test_teams_and_roles(platform: Platform, pair_folder: Path, tmp_path: Path) -> None:
    alice = as_principal(platform, "alice")
    teams.create_team(alice, "vision")
    teams.add_member(alice, "vision", "bob", "viewer")
    alice.create_collection("colours", team="vision")
    ingest(alice, "colours", read_pairs(pair_folder / "pairs.jsonl"))

    bob = as_principal(platform, "bob")
    assert [c.name for c in bob.list_collections()] == ["colours"]
    engine = bob.engine("colours")
    assert engine.classify_vectors(engine.encode_images([red_query(tmp_path)]), LABELS,
                                   engine.options()).shape == (1, 4)
    with pytest.raises(PermissionDenied, match="'bob' is a viewer.*needs the editor role"):
        ingest(bob, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    with pytest.raises(PermissionDenied):
        change_consent(bob, "colours", PairSelector(source_datasets=("pairs",)), "revoked")
    with pytest.raises(PermissionDenied, match="only its owners"):
        teams.add_member(bob, "vision", "bob", "owner")

    carol = as_principal(platform, "carol")
    assert carol.list_collections() == []
    with pytest.raises(NotFound, match="visible to 'carol'"):
        carol.engine("colours")

    with alice.catalog.session() as session:
        refusals = session.scalars(select(AuditEntry).where(AuditEntry.outcome == "refused")).all()
    assert len(refusals) == 4
    assert {r.principal for r in refusals} == {"bob", "carol"}


def test_audit_chain_detects_tampering(filled: Platform) -> None:
    change_consent(filled, "colours", PairSelector(source_datasets=("pairs",)), "revoked")
    check = verify_chain(filled)
    assert check.ok and check.entries >= 3
    with filled.catalog.session() as session:
        second = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()[1]
        second.details = {"pairs": 0}
    broken = verify_chain(filled)
    assert broken.first_broken == second.id and "content" in broken.reason


def test_audit_entries_of_other_teams_stay_hidden(platform: Platform, pair_folder: Path) -> None:
    alice, bob = as_principal(platform, "alice"), as_principal(platform, "bob")
    teams.create_team(alice, "vision")
    alice.create_collection("private", team="vision")
    ingest(alice, "private", read_pairs(pair_folder / "pairs.jsonl"))
    teams.add_member(alice, "vision", "carol", "viewer")
    teams.create_team(bob, "audio")
    bob.create_collection("sounds", team="audio")

    alice_sees = {(e.principal, e.target) for e in visible_entries(alice, last=100)}
    bob_sees = {(e.principal, e.target) for e in visible_entries(bob, last=100)}

    assert ("alice", "collection:private") in alice_sees
    assert ("bob", "collection:sounds") in bob_sees
    assert not any(target == "collection:private" or principal == "alice"
                   for principal, target in bob_sees)
    assert not any(target == "collection:sounds" for _, target in alice_sees)
    # A viewer is not an owner: the per-collection view is refused, and audited.
    carol = as_principal(platform, "carol")
    with pytest.raises(PermissionDenied):
        visible_entries(carol, collection="private")
    assert [e.target for e in visible_entries(alice, collection="private", last=100)
            if e.outcome == "refused"] == ["collection:private"]


@pytest.mark.parametrize("expression", ["MIT AND", "(Apache-2.0) AND ()", "\x0f"])
def test_malformed_license_expressions_are_config_errors(expression: str) -> None:
    # license-expression raises AttributeError or IndexError on these (found by fuzzing).
    with pytest.raises(ConfigError, match="invalid SPDX license expression"):
        normalise_license(expression)
