"""The ``asif`` command line through click's CliRunner, on the fake encoders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fakes import fake_loader

import asif_platform.platform as platform_module
from asif_platform.cli import cli
from asif_platform.settings import Settings


@pytest.fixture
def run(settings: Settings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(platform_module, "load_encoder",
                        lambda identifier, modality, threads=0: fake_loader(identifier, modality))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(cli, list(args), obj={"settings": settings})

    return invoke


@pytest.fixture
def labelled(tmp_path: Path, pair_folder: Path) -> Path:
    folder = tmp_path / "labelled"
    for colour in ("red", "green", "blue", "yellow"):
        (folder / colour).mkdir(parents=True)
        for index in (4, 5):
            shutil.copy(pair_folder / f"{colour}{index}.png", folder / colour)
    return folder


def ok(result: Result) -> dict:  # type: ignore[type-arg]
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_collection_lifecycle(run) -> None:  # type: ignore[no-untyped-def]
    created = ok(run("collection", "create", "colours", "-k", "5", "--json"))
    assert created["k"] == 5 and created["anchors"] == 0
    assert [c["name"] for c in ok(run("collection", "list", "--json"))] == ["colours"]
    shown = ok(run("collection", "show", "colours", "-p", "3", "--json"))
    assert shown["p"] == 3.0
    assert shown["exact_search"] is True and shown["hnsw_ef"] is None
    assert (shown["hnsw_m"], shown["hnsw_ef_construct"], shown["quantization"]) == (
        32, 256, "none")
    tuned = ok(run("collection", "show", "colours", "--hnsw", "--hnsw-ef", "1600", "--json"))
    assert (tuned["exact_search"], tuned["hnsw_ef"], tuned["p"]) == (False, 1600, 3.0)
    back = ok(run("collection", "show", "colours", "--exact", "--json"))
    assert (back["exact_search"], back["hnsw_ef"]) == (True, 1600)
    for option in ("--hnsw-ef", "-k"):  # past the catalog's integers: a usage error
        huge = run("collection", "show", "colours", option, "99999999999999999999")
        assert huge.exit_code == 2 and "between 1 and 100,000" in huge.output, huge.output
    huge = run("collection", "create", "huge", "--hnsw-ef", "100001")
    assert huge.exit_code == 2 and "between 1 and 100,000" in huge.output, huge.output
    assert run("collection", "show", "huge").exit_code == 1  # nothing was created
    small = ok(run("collection", "create", "small", "--quantization", "int8", "--hnsw-m", "16",
                   "--hnsw-ef-construct", "100", "--json"))
    assert (small["hnsw_m"], small["hnsw_ef_construct"], small["quantization"]) == (
        16, 100, "int8")
    plain = ok(run("collection", "create", "plain", "--quantization", "none", "--json"))
    assert plain["quantization"] == "none"
    wide = run("collection", "create", "wide", "--hnsw-m", "1000")
    assert wide.exit_code == 2 and "4<=x<=128" in wide.output, wide.output

    again = run("collection", "create", "colours")
    assert again.exit_code == 2, again.output
    assert "already exists" in again.output
    missing = run("collection", "show", "nope")
    assert missing.exit_code == 1 and "no collection named 'nope'" in missing.output
    bad = run("collection", "create", "x", "--template", "no placeholder")
    assert bad.exit_code == 2 and "exactly one '{}'" in bad.output


def test_ingest_classify_eval_explain(run, pair_folder: Path, labelled: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("collection", "create", "colours", "-k", "6", "-p", "2", "--template", "a {} square",
              "--json"))
    report = ok(run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--json"))
    assert report["pairs_added"] == 48
    again = run("ingest", "colours", str(pair_folder / "pairs.jsonl"))
    assert again.exit_code == 0 and "nothing new" in again.output

    classified = ok(run("classify", "colours", str(labelled / "red"), "-l", "red", "-l",
                        "green", "-l", "blue", "--json"))
    assert [p["label"] for p in classified["predictions"]] == ["red", "red"]

    evaluation = ok(run("eval", "colours", str(labelled), "--ks", "3,6", "--ps", "1,2", "--json"))
    assert 0.0 <= evaluation["top1"] <= 1.0 and evaluation["top5"] == 1.0
    assert evaluation["top1"] >= 0.75
    assert len(evaluation["settings"]) == 4
    assert len(evaluation["confusion"]) == 4

    explained = ok(run("explain", "colours", str(labelled / "blue" / "blue4.png"), "blue",
                       "-l", "red", "--json"))
    blue = explained["labels"][0]
    assert blue["label"] == "blue" and blue["contributions"]
    assert all("blue" in c["caption"] for c in blue["contributions"])
    text = run("explain", "colours", str(labelled / "blue" / "blue4.png"), "blue",
               "--html", str(labelled.parent / "explain.html"))
    assert text.exit_code == 0 and "label 'blue'" in text.output
    page = (labelled.parent / "explain.html").read_text()
    assert "a blue square" in page and "data:image/jpeg;base64," in page


def test_usage_errors(run, pair_folder: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("collection", "create", "colours", "--json"))
    one_label = run("classify", "colours", str(pair_folder / "red0.png"), "-l", "red")
    assert one_label.exit_code == 2 and "at least two different labels" in one_label.output
    bad_ks = run("eval", "colours", str(pair_folder), "--ks", "a,b")
    assert bad_ks.exit_code == 2 and "comma-separated integers" in bad_ks.output
    missing = run("ingest", "nope", str(pair_folder / "pairs.jsonl"))
    assert missing.exit_code == 1 and "no collection named 'nope'" in missing.output


def test_db_commands(run) -> None:  # type: ignore[no-untyped-def]
    upgraded = ok(run("db", "upgrade", "--json"))
    current = ok(run("db", "current", "--json"))
    assert upgraded["current"] == current["current"] == current["head"]


def test_versions_experiments_and_tuning(run, pair_folder: Path, labelled: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("collection", "create", "colours", "-k", "6", "-p", "2", "--template", "a {} square",
           "--json"))
    ok(run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--json"))
    v1 = ok(run("version", "create", "colours", "v1", "--json"))
    assert v1["anchors"] == 48 and v1["status"] == "ready"
    (pair_folder / "more.jsonl").write_text('{"image": "red1.png", "caption": "crimson"}\n')
    ok(run("ingest", "colours", str(pair_folder / "more.jsonl"), "--json"))
    ok(run("version", "create", "colours", "v2", "--json"))
    assert [v["name"] for v in ok(run("version", "list", "colours", "--json"))] == ["v1", "v2"]
    diff = ok(run("version", "diff", "colours", "v1", "v2", "--json"))
    assert diff["added"] == 1 and diff["removed"] == 0
    text = run("version", "diff", "colours", "v1", "v2")
    assert text.exit_code == 0 and "added 1, removed 0, unchanged 48" in text.output

    first = ok(run("eval", "colours", str(labelled), "--version", "v1", "--json"))
    second = ok(run("eval", "colours", str(labelled), "-p", "1", "--json"))
    listed = ok(run("experiment", "list", "--json"))
    assert [e["id"] for e in listed] == [first["experiment"], second["experiment"]]
    assert listed[0]["version"] == "v1" and listed[1]["version"] is None
    assert listed[0]["eval_set_sha256"] == listed[1]["eval_set_sha256"]
    compared = ok(run("experiment", "compare", str(first["experiment"]),
                      str(second["experiment"]), "--json"))
    assert compared["fields"]["p"] == [2.0, 1.0]
    assert run("experiment", "show", "999").exit_code == 1

    missing = run("eval", "colours", str(labelled), "--version", "nope")
    assert missing.exit_code == 1 and "no version 'nope'" in missing.output

    tuned = ok(run("tune", "colours", str(labelled), "--ks", "3,6", "--ps", "1,4",
                   "--aggregations", "mean,max", "--save", "--json"))
    assert len(tuned["grid"]) == 8 and tuned["heldout_images"] == 4
    shown = ok(run("collection", "show", "colours", "--json"))
    assert (shown["k"], shown["p"]) == (tuned["best"]["k"], tuned["best"]["p"])
    assert ok(run("experiment", "list", "--json"))[-1]["kind"] == "tune"


def test_consent_deletion_and_audit_commands(run, pair_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("collection", "create", "colours", "--json"))
    ok(run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--license", "CC-BY-4.0",
           "--json"))
    bad = run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--license", "CC-BY-40")
    assert bad.exit_code == 2 and "did you mean 'CC-BY-4.0'" in bad.output

    revoked = ok(run("consent", "revoke", "colours", "--record-id", "pairs.jsonl:1", "--json"))
    assert revoked["pairs"] == 1
    requested = ok(run("deletion", "request", "colours", "--record-id", "pairs.jsonl:2",
                       "--basis", "GDPR Art. 17", "--requester", "jane@example.org", "--json"))
    assert requested["pairs"] == 1 and "pairs_content" not in requested
    request_id = str(requested["request"])
    shown = ok(run("deletion", "preview", request_id, "--show-content", "--json"))
    assert shown["pairs_content"][0]["caption"] == "something red"  # line 2 of the file
    applied = ok(run("deletion", "apply", request_id, "--json"))
    assert applied["pairs_removed"] == 1 and applied["verification"]["passed"]
    assert ok(run("deletion", "status", request_id, "--json"))["status"] == "completed"
    assert json.loads(run("deletion", "receipt", request_id).output) == applied

    doctor = ok(run("doctor", "--json"))
    assert doctor["consistent"] and doctor["collections"][0]["catalog_anchors"] == 47
    assert ok(run("audit", "verify", "--json"))["ok"]
    listed = run("audit", "list", "--last", "50")
    assert "deletion.finalize" in listed.output and "jane@example.org" not in listed.output

    viewer = run("--as", "mallory", "deletion", "apply", request_id)
    assert viewer.exit_code == 1 and "visible to 'mallory'" in viewer.output


def test_bad_values_are_usage_errors(run, pair_folder: Path, labelled: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("collection", "create", "colours", "--json"))
    ok(run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--json"))
    for option, value, message in (("--ks", "0,5", "positive integer"),
                                   ("--ps", "-1", "positive number")):
        result = run("eval", "colours", str(labelled), option, value)
        assert result.exit_code == 2 and message in result.output, result.output
    html = run("explain", "colours", str(labelled / "red" / "red4.png"), "red",
               "--html", str(tmp_path / "no-such-dir" / "x.html"))
    assert html.exit_code == 2 and "does not exist" in html.output
    # /proc refuses new files even to root: an error that names the path, no traceback.
    unwritable = run("explain", "colours", str(labelled / "red" / "red4.png"), "red",
                     "--html", "/proc/asif-explain.html")
    assert unwritable.exit_code == 1, unwritable.output
    assert "cannot write /proc/asif-explain.html" in unwritable.output
    revision = run("db", "upgrade", "--revision", "nope")
    assert revision.exit_code == 2 and "asif db history" in revision.output
    top = run("classify", "colours", str(labelled / "red" / "red4.png"), "-l", "red", "-l",
              "blue", "--top", "2")
    assert top.exit_code == 0 and "red" in top.output and "blue" in top.output


def test_other_teams_see_no_experiments(run, labelled: Path, pair_folder: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("collection", "create", "colours", "--json"))
    ok(run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--json"))
    experiment = ok(run("eval", "colours", str(labelled), "--json"))["experiment"]
    assert ok(run("--as", "eve", "experiment", "list", "--json")) == []
    hidden = run("--as", "eve", "experiment", "show", str(experiment))
    assert hidden.exit_code == 1 and "no experiment" in hidden.output


def test_small_cli_contracts(run, pair_folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("collection", "create", "colours", "--exclude-consent", "unknown", "--json"))
    # `policy NAME` alone shows the policy; it no longer clears it.
    shown = ok(run("collection", "policy", "colours", "--json"))
    assert shown["policy"]["exclude_consent"] == ["unknown"]
    cleared = ok(run("collection", "policy", "colours", "--clear", "--json"))
    assert cleared["policy"]["exclude_consent"] == []
    both = run("collection", "policy", "colours", "--clear", "--exclude-consent", "unknown")
    assert both.exit_code == 2 and "--clear cannot be combined" in both.output

    ok(run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--json"))
    same = run("classify", "colours", str(pair_folder / "red0.png"), "-l", "red", "-l", "red")
    assert same.exit_code == 2 and "two different labels" in same.output

    (tmp_path / "broken.png").write_bytes(b"not an image")
    broken = run("classify", "colours", str(tmp_path / "broken.png"), "-l", "red", "-l", "blue")
    assert broken.exit_code == 1 and "none of the 1 images could be read" in broken.output
    assert "unreadable" in broken.output


def test_refused_tune_save_records_no_experiment(run, pair_folder: Path, labelled: Path) -> None:  # type: ignore[no-untyped-def]
    ok(run("team", "create", "vision", "--json"))
    ok(run("team", "add", "vision", "bob", "--role", "viewer", "--json"))
    ok(run("collection", "create", "colours", "-k", "6", "--team", "vision", "--json"))
    ok(run("ingest", "colours", str(pair_folder / "pairs.jsonl"), "--json"))

    refused = run("--as", "bob", "tune", "colours", str(labelled), "--ks", "3", "--ps", "1",
                  "--save")
    assert refused.exit_code == 1 and "needs the editor role" in refused.output
    assert ok(run("experiment", "list", "--json")) == []


def test_principal_names_are_checked(run) -> None:  # type: ignore[no-untyped-def]
    bad = run("--as", "bob smith; drop", "collection", "list")
    assert bad.exit_code == 2 and "invalid principal name" in bad.output
    assert run("--as", "bob.smith@example.org", "collection", "list").exit_code == 0


def test_db_history_as_json(run) -> None:  # type: ignore[no-untyped-def]
    history = ok(run("db", "history", "--json"))
    assert history[-1]["down_revision"] is None  # oldest last
    assert all(entry["revision"] and entry["message"] for entry in history)
    assert history[0]["revision"] == ok(run("db", "current", "--json"))["head"]
