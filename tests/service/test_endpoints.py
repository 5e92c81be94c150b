"""Every endpoint of the HTTP API, called over loopback with a valid key."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image
from service_support import Live, live_fixture  # noqa: F401 - provides `live`


def png(rgb: tuple[int, int, int], seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-20, 20, size=(16, 16, 3))
    pixels = np.clip(np.array(rgb)[None, None, :] + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


RED, BLUE = (220, 30, 30), (30, 40, 220)
LABELS = {"labels": ["red", "green", "blue", "yellow"]}


def test_health_and_schema(live: Live) -> None:
    with live.client() as client:
        assert client.get("/v1/health").json()["status"] == "ok"
        schema = client.get("/v1/openapi.json").json()
    assert "/v1/collections/{name}/classify" in schema["paths"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(
        schema["components"]["securitySchemes"]
    )


def test_collections_create_list_get_policy(live: Live) -> None:
    with live.client("alice") as client:
        created = client.post(
            "/v1/collections", json={"name": "birds", "team": "vision"}
        )
        assert created.status_code == 201, created.text
        again = client.post("/v1/collections", json={"name": "birds", "team": "vision"})
        assert again.status_code == 409, again.text
        assert again.json()["code"] == "already_exists"
        names = [c["name"] for c in client.get("/v1/collections").json()]
        assert names == ["birds", "pets"]
        pets = client.get("/v1/collections/pets").json()
        assert pets["anchors"] == 48
        policy = client.put(
            "/v1/collections/pets/policy", json={"exclude_consent": ["unknown"]}
        )
        assert policy.status_code == 200, policy.text
        assert policy.json()["policy"] == {
            "exclude_consent": ["unknown"],
            "exclude_license_classes": [],
        }
        assert client.get("/v1/whoami").json() == {
            "principal": "alice",
            "teams": {"vision": "owner"},
        }


def test_query_defaults_are_changed_by_editors_and_audited(live: Live) -> None:
    with live.client("alice") as client:
        created = client.post("/v1/collections", json={
            "name": "fish", "team": "vision", "quantization": "int8", "hnsw_m": 16,
            "hnsw_ef_construct": 100})
        assert created.status_code == 201, created.text
        assert (created.json()["hnsw_m"], created.json()["quantization"]) == (16, "int8")
        config = json.loads(
            (live.platform.settings.qdrant_path / "fish" / "edge_config.json").read_text())
        assert config["hnsw_config"]["m"] == 16 and config["hnsw_config"]["ef_construct"] == 100
        assert config["quantization_config"]["scalar"]["type"] == "int8"
        wide = client.post("/v1/collections", json={"name": "wide", "hnsw_m": 1000})
        assert wide.status_code == 422, wide.text
        plain = client.post("/v1/collections", json={"name": "plain", "quantization": "none"})
        assert plain.json()["quantization"] == "none", plain.text
        tuned = client.patch(
            "/v1/collections/fish", json={"k": 5, "exact_search": False, "hnsw_ef": 64}
        )
        assert tuned.status_code == 200, tuned.text
        body = tuned.json()
        assert (body["k"], body["exact_search"], body["hnsw_ef"]) == (5, False, 64)
        assert body["p"] == 8.0 and body["templates"] == ["a photo of a {}."]  # untouched
        for bad, code in (({"hnsw_ef": 0}, "validation_failed"),
                          ({"k": 100_001}, "validation_failed"),
                          ({"m": 16}, "validation_failed"),
                          ({"template_aggregation": "median"}, "validation_failed"),
                          ({"k": True}, "validation_failed"),
                          ({"k": "5"}, "validation_failed"),
                          ({"exact_search": "yes"}, "validation_failed"),
                          ({"p": True}, "validation_failed"),
                          ({"templates": ["no slot"]}, "invalid_argument")):
            refused = client.patch("/v1/collections/fish", json=bad)
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["code"] == code, refused.text
        for raw in (b'{"p": NaN}', b'{"templates": ["\\ud800 {}"]}'):  # JSON allows both
            refused = client.patch("/v1/collections/fish", content=raw,
                                   headers={"Content-Type": "application/json"})
            assert refused.status_code == 422, (raw, refused.text)
        assert client.get("/v1/collections/fish").json()["hnsw_ef"] == 64  # kept
        entries = client.get("/v1/collections/fish/audit", params={"last": 10}).json()
    changed = [e for e in entries if e["action"] == "collection.defaults"]
    assert [e["details"] for e in changed] == [{"k": 5, "exact_search": False, "hnsw_ef": 64}]
    with live.client("carol") as client:  # a viewer of team vision
        assert client.patch("/v1/collections/fish", json={"k": 7}).status_code == 403
    with live.client("bob") as client:  # not in team vision: fish is not visible
        assert client.patch("/v1/collections/fish", json={"k": 7}).status_code == 404

def test_classify_uploads_and_paths(live: Live) -> None:
    files = [
        ("images", ("r.png", png(RED, 1), "image/png")),
        ("images", ("b.png", png(BLUE, 2), "image/png")),
    ]
    data = {**LABELS, "image_paths": ["pairs/yellow0.png"], "top": "2"}
    with live.client("carol") as client:
        response = client.post("/v1/collections/pets/classify", files=files, data=data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["label"] for p in body["predictions"]] == ["red", "blue", "yellow"]
    assert all(len(p["top"]) == 2 and p["contributors"] for p in body["predictions"])
    assert body["revision"] >= 1 and body["unreadable"] == []


def test_explain(live: Live) -> None:
    with live.client("carol") as client:
        response = client.post(
            "/v1/collections/pets/explain",
            files={"image": ("r.png", png(RED, 3), "image/png")},
            data={"labels": ["red", "blue"], "top": "3"},
        )
    assert response.status_code == 200, response.text
    red, blue = response.json()["labels"]
    assert red["score"] > blue["score"] and len(red["contributions"]) == 3
    assert "image_ref" not in red["contributions"][0]  # server paths stay on the server


def test_ingest_upload_and_path(live: Live) -> None:
    pairs = [
        {"image": "r.png", "caption": "a red square uploaded", "license": "CC-BY-4.0"},
        {"image": "b.png", "caption": "a blue square uploaded"},
    ]
    files = [
        ("images", ("r.png", png(RED, 10), "image/png")),
        ("images", ("b.png", png(BLUE, 11), "image/png")),
    ]
    (live.data_root / "more").mkdir()
    (live.data_root / "more" / "green.png").write_bytes(png((30, 200, 40), 12))
    (live.data_root / "more" / "green.txt").write_text("a green square on disk\n")
    with live.client("alice") as client:
        uploaded = client.post(
            "/v1/collections/pets/ingest/upload",
            files=files,
            data={"pairs": json.dumps(pairs), "consent": "granted"},
        )
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["pairs_added"] == 2
        on_disk = client.post("/v1/collections/pets/ingest/path", json={"path": "more"})
        assert on_disk.status_code == 200, on_disk.text
        assert on_disk.json()["pairs_added"] == 1
        assert client.get("/v1/collections/pets").json()["anchors"] == 51
    assert len(list((live.platform.settings.home / "uploads").iterdir())) == 2



def test_an_upload_keeps_only_the_images_its_pairs_use(live: Live) -> None:
    pairs = [
        {"image": "good.png", "caption": "a red square kept"},
        {"image": "broken.png", "caption": "an image that does not decode"},
        {"image": "blank.png", "caption": "   "},  # refused: empty caption
    ]
    files = [
        ("images", ("good.png", png(RED, 30), "image/png")),
        ("images", ("broken.png", b"not an image at all", "image/png")),
        ("images", ("blank.png", png(BLUE, 31), "image/png")),
    ]
    with live.client("alice") as client:
        response = client.post(
            "/v1/collections/pets/ingest/upload",
            files=files,
            data={"pairs": json.dumps(pairs)},
        )
    assert response.status_code == 200, response.text
    assert response.json()["pairs_added"] == 1
    with live.client("alice") as client:
        wrong = client.post(
            "/v1/collections/pets/ingest/upload",
            files=[("images", ("c.png", png(BLUE, 32), "image/png"))],
            data={"pairs": json.dumps([{"image": "c.png", "caption": "a blue square",
                                        "creator": ["not", "text"]}])},
        )
    assert wrong.status_code == 422 and wrong.json()["code"] == "malformed_upload", wrong.text
    assert "creator must be a string" in wrong.json()["detail"]
    kept = [path.read_bytes() for path in (live.platform.settings.home / "uploads").iterdir()]
    assert kept == [png(RED, 30)]

def test_versions_consent_deletion_audit(live: Live) -> None:
    with live.client("alice") as client:
        v1 = client.post("/v1/collections/pets/versions", json={"name": "v1"})
        assert v1.status_code == 201, v1.text
        again = client.post("/v1/collections/pets/versions", json={"name": "v1"})
        assert (again.status_code, again.json()["code"]) == (409, "already_exists")
        assert [
            v["name"] for v in client.get("/v1/collections/pets/versions").json()
        ] == ["v1"]
        assert client.get("/v1/collections/pets/versions/v1").json()["anchors"] == 48

        revoked = client.post(
            "/v1/collections/pets/consent",
            json={"status": "revoked", "source_record_ids": ["pairs.jsonl:1"]},
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["pairs"] == 1

        requested = client.post(
            "/v1/collections/pets/deletions",
            json={
                "legal_basis": "GDPR Art. 17",
                "caption_contains": ["red square number 0"],
                "requester": "someone@example.org",
            },
        )
        assert requested.status_code == 201, requested.text
        request_id = requested.json()["request"]
        doomed = set(requested.json()["anchor_ids"])
        assert len(doomed) == 1
        assert client.get(f"/v1/deletions/{request_id}").json()["status"] == "requested"
        assert client.get(f"/v1/deletions/{request_id}/preview").json()["pairs"] == 1
        receipt = client.post(f"/v1/deletions/{request_id}/apply")
        assert receipt.status_code == 200, receipt.text
        assert set(receipt.json()["removed_ids"]) == doomed
        assert receipt.json()["verification"]["passed"] is True
        assert (
            client.get(f"/v1/deletions/{request_id}/receipt").json() == receipt.json()
        )

        v2 = client.post("/v1/collections/pets/versions", json={"name": "v2"})
        assert v2.status_code == 201, v2.text
        diff = client.get("/v1/collections/pets/versions/v1/diff/v2").json()
        assert diff["unchanged"] == 47 and diff["removed"] == diff["added"] == 0
        v1_now = client.get("/v1/collections/pets/versions/v1").json()
        assert v1_now["redactions"] == {str(request_id): 1}

        entries = client.get("/v1/collections/pets/audit", params={"last": 50}).json()
        actions = [e["action"] for e in entries]
        assert "consent.revoked" in actions and "deletion.finalize" in actions
        assert "someone@example.org" not in json.dumps(entries)
        assert client.get("/v1/audit/verify").json()["ok"] is True
        mine = client.get("/v1/audit", params={"last": 1000}).json()
        assert {e["target"] for e in mine} >= {
            "collection:pets",
            f"deletion:{request_id}",
        }

        # The deleted pair no longer contributes to any answer.
        answer = client.post(
            "/v1/collections/pets/classify",
            data={**LABELS, "image_paths": ["pairs/red0.png"]},
        ).json()
    cited = {c for p in answer["predictions"] for c in p["contributors"]}
    assert cited and not cited & doomed


def test_deleting_the_last_pair_of_an_upload_unlinks_the_file(live: Live) -> None:
    pairs = [
        {"image": "r.png", "caption": "one caption of the upload"},
        {"image": "r.png", "caption": "another caption of it"},
    ]
    files = [("images", ("r.png", png(RED, 20), "image/png"))]
    uploads = live.platform.settings.home / "uploads"
    with live.client("alice") as client:
        added = client.post(
            "/v1/collections/pets/ingest/upload",
            files=files,
            data={"pairs": json.dumps(pairs)},
        )
        assert added.json()["pairs_added"] == 2
        (stored,) = uploads.iterdir()
        for caption, left in (("one caption", True), ("another caption", False)):
            request = client.post(
                "/v1/collections/pets/deletions",
                json={"legal_basis": "test", "caption_contains": [caption]},
            ).json()["request"]
            assert client.post(f"/v1/deletions/{request}/apply").status_code == 200
            assert stored.exists() is left
