"""The service refuses what it must: no key, bad keys, other teams, low roles, paths
outside the data root, oversized and malformed uploads. Each refusal is a
problem+json document with a stable code."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace

import httpx
from service_support import (  # noqa: F401 - live_fixture provides `live`
    MAX_BODY,
    MAX_IMAGES,
    Live,
    live_fixture,
    serving,
)
from sqlalchemy import select
from test_endpoints import LABELS, RED, png

from asif_platform.apikeys import create_key, revoke_key
from asif_platform.catalog import AuditEntry
from asif_platform.service import create_app

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body = response.json()
    assert body["code"] == code and body["status"] == status, body
    assert body["type"] == f"urn:asif:problem:{code}"


def refusals(live: Live, principal: str) -> list[AuditEntry]:
    with live.platform.catalog.session() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(
                    AuditEntry.principal == principal, AuditEntry.outcome == "refused"
                )
            )
        )


def every_operation(live: Live) -> list[tuple[str, str]]:
    with live.client() as client:
        schema = client.get("/v1/openapi.json").json()
    found = []
    for path, item in schema["paths"].items():
        for method in item:
            concrete = (
                path.replace("{name}", "pets")
                .replace("{request_id}", "1")
                .replace("{version}", "v1")
                .replace("{old}", "v1")
                .replace("{new}", "v1")
            )
            found.append((method.upper(), concrete))
    return found


def test_every_operation_but_health_needs_a_key(live: Live) -> None:
    operations = every_operation(live)
    assert len(operations) >= 20
    with live.client() as client:
        for method, path in operations:
            response = client.request(method, path)
            if path == "/v1/health":
                assert response.status_code == 200
                continue
            assert_problem(response, 401, "unauthenticated")
            assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_keys_are_refused_and_audited(live: Live) -> None:
    for authorization, code in (
        ("Bearer asif_000000000000_" + "x" * 43, "invalid_key"),  # well-formed, unknown
        ("Bearer not-a-key", "invalid_key"),  # malformed
        ("Basic YWxpY2U6c2VjcmV0", "unauthenticated"),  # another scheme
    ):
        with live.client(Authorization=authorization) as client:
            assert_problem(client.get("/v1/collections"), 401, code)
    refused = refusals(live, "unauthenticated")
    assert [(e.action, e.target) for e in refused] == [
        ("service.authenticate", "key:000000000000"),
        ("service.authenticate", "key:malformed"),
    ]


def test_a_key_with_a_wrong_secret_and_a_revoked_key_are_refused(live: Live) -> None:
    alice = live.keys["alice"]
    tampered = alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB")
    with live.client(Authorization=f"Bearer {tampered}") as client:
        assert_problem(client.get("/v1/collections"), 401, "invalid_key")
    info, token = create_key(live.platform.as_principal("admin"), "alice")
    with live.client(**{"X-API-Key": token}) as client:
        assert client.get("/v1/collections").status_code == 200
        revoke_key(live.platform.as_principal("admin"), info.id)
        assert_problem(client.get("/v1/collections"), 401, "invalid_key")


def test_keys_are_stored_only_as_hashes(live: Live) -> None:
    from asif_platform.catalog import ApiKey

    with live.platform.catalog.session() as session:
        rows = session.scalars(select(ApiKey)).all()
    stored = json.dumps([[r.prefix, r.key_sha256, r.label] for r in rows])
    for token in live.keys.values():
        secret = token.split("_", 2)[2]  # token_urlsafe may itself contain "_"
        assert token not in stored and secret not in stored


def test_no_cross_team_reads(live: Live) -> None:
    with live.client("alice") as client:
        request_id = client.post(
            "/v1/collections/pets/deletions",
            json={"legal_basis": "test", "source_datasets": ["nothing"]},
        ).json()["request"]
    image = {"images": ("r.png", png(RED), "image/png")}
    with live.client("bob") as client:
        assert [c["name"] for c in client.get("/v1/collections").json()] == ["secret"]
        # Another team's collection reads exactly like one that does not exist.
        hidden = client.get("/v1/collections/pets").json()["detail"]
        missing = client.get("/v1/collections/none").json()["detail"]
        assert hidden.replace("'pets'", "'none'") == missing
        for response in (
            client.get("/v1/collections/pets"),
            client.get("/v1/collections/pets/versions"),
            client.get("/v1/collections/pets/audit"),
            client.post("/v1/collections/pets/classify", files=image, data=LABELS),
            client.post(
                "/v1/collections/pets/explain",
                files={"image": ("r.png", png(RED), "image/png")},
                data={"labels": ["red"]},
            ),
            client.post(
                "/v1/collections/pets/consent",
                json={"status": "revoked", "source_datasets": ["pairs"]},
            ),
            client.post(
                "/v1/collections/pets/deletions",
                json={"legal_basis": "x", "source_datasets": ["pairs"]},
            ),
            client.post("/v1/collections/pets/versions", json={"name": "stolen"}),
            client.put("/v1/collections/pets/policy", json={}),
        ):
            assert_problem(response, 404, "not_found")
        for path in (
            f"/v1/deletions/{request_id}",
            f"/v1/deletions/{request_id}/preview",
            f"/v1/deletions/{request_id}/receipt",
        ):
            response = client.get(path)
            assert_problem(response, 404, "not_found")
            assert "pets" not in response.json()["detail"]
        assert_problem(
            client.post(f"/v1/deletions/{request_id}/apply"), 404, "not_found"
        )
        seen = client.get("/v1/audit", params={"last": 1000}).json()
        leaked = [  # bob sees his own refused attempts, nothing else about pets
            e
            for e in seen
            if e["principal"] != "bob"
            and ("pets" in e["target"] or e["target"] == f"deletion:{request_id}")
        ]
        assert seen and not leaked
    assert len(refusals(live, "bob")) >= 9


def test_a_viewer_may_read_but_not_write(live: Live) -> None:
    with live.client("carol") as client:
        assert client.get("/v1/collections/pets").status_code == 200
        for response in (
            client.post(
                "/v1/collections/pets/consent",
                json={"status": "revoked", "source_datasets": ["pairs"]},
            ),
            client.post(
                "/v1/collections/pets/deletions",
                json={"legal_basis": "x", "source_datasets": ["pairs"]},
            ),
            client.post("/v1/collections/pets/versions", json={"name": "v9"}),
            client.post("/v1/collections/pets/ingest/path", json={"path": "pairs"}),
            client.get("/v1/collections/pets/audit"),
            client.post("/v1/collections", json={"name": "mine", "team": "vision"}),
        ):
            assert_problem(response, 403, "forbidden")
    assert {e.action for e in refusals(live, "carol")} >= {
        "collection.write",
        "collection.admin",
    }


def test_ingest_paths_stay_inside_the_data_root(live: Live) -> None:
    outside = live.data_root.parent / "outside"
    outside.mkdir()
    (outside / "x.png").write_bytes(png(RED))
    (outside / "x.txt").write_text("a secret caption\n")
    os.symlink(outside, live.data_root / "link-out")
    with live.client("alice") as client:
        for path in (
            "../outside",
            "../../../../etc/passwd",
            "/etc/passwd",
            "pairs/../../outside",
            "link-out",
            "link-out/x.png",
        ):
            response = client.post(
                "/v1/collections/pets/ingest/path", json={"path": path}
            )
            assert_problem(response, 403, "path_outside_root")
        assert client.get("/v1/collections/pets").json()["anchors"] == 48


def test_image_references_inside_a_source_file_stay_inside_the_root(live: Live) -> None:
    (live.data_root.parent / "outside.png").write_bytes(png(RED))
    (live.data_root / "evil.jsonl").write_text(
        '{"image": "pairs/red0.png", "caption": "fine"}\n'
        '{"image": "../outside.png", "caption": "reads a file outside the root"}\n'
    )
    (live.data_root / "evil.csv").write_text(
        "image,caption\n/etc/hostname,absolute path\n"
    )
    with live.client("alice") as client:
        for source in ("evil.jsonl", "evil.csv"):
            response = client.post(
                "/v1/collections/pets/ingest/path", json={"path": source}
            )
            assert_problem(response, 403, "path_outside_root")
        response = client.post(
            "/v1/collections/pets/ingest/path",
            json={"path": "pairs/pairs.jsonl", "image_dir": "../"},
        )
        assert_problem(response, 403, "path_outside_root")
        anchors = client.get("/v1/collections/pets").json()["anchors"]
    assert anchors == 48  # nothing of the refused sources was ingested


def test_classify_image_paths_stay_inside_the_root(live: Live) -> None:
    with live.client("carol") as client:
        for path in ("../outside.png", "/etc/passwd", "pairs/../../x.png"):
            response = client.post(
                "/v1/collections/pets/classify", data={**LABELS, "image_paths": [path]}
            )
            assert_problem(response, 403, "path_outside_root")


def test_without_a_data_root_server_paths_are_disabled(live: Live) -> None:
    settings = replace(live.platform.settings, service_data_root=None)
    with (
        serving(create_app(settings, platform=live.platform)) as url,
        httpx.Client(base_url=url, headers={"X-API-Key": live.keys["alice"]}) as client,
    ):
        assert_problem(
            client.post("/v1/collections/pets/ingest/path", json={"path": "pairs"}),
            403,
            "server_paths_disabled",
        )
        assert_problem(
            client.post(
                "/v1/collections/pets/classify",
                data={**LABELS, "image_paths": ["pairs/red0.png"]},
            ),
            403,
            "server_paths_disabled",
        )


def test_uploaded_file_names_are_plain_names(live: Live) -> None:
    with live.client("alice") as client:
        for name in ("../evil.png", "a/b.png", "..", "c\\d.png"):
            response = client.post(
                "/v1/collections/pets/ingest/upload",
                files=[("images", (name, png(RED), "image/png"))],
                data={"pairs": json.dumps([{"image": name, "caption": "x"}])},
            )
            assert_problem(response, 422, "invalid_image_reference")
        response = client.post(
            "/v1/collections/pets/ingest/upload",
            files=[("images", ("a.png", png(RED), "image/png"))],
            data={"pairs": json.dumps([{"image": "../../etc/passwd", "caption": "x"}])},
        )
        assert_problem(response, 422, "invalid_image_reference")
    assert not (live.platform.settings.home / "uploads").exists()


def test_oversized_bodies_are_refused(live: Live) -> None:
    big = b"\0" * (MAX_BODY + 1)
    with live.client("alice") as client:
        response = client.post(
            "/v1/collections/pets/ingest/upload",
            files=[("images", ("big.png", big, "image/png"))],
            data={"pairs": "[]"},
        )
        assert_problem(response, 413, "payload_too_large")

        def chunks():  # no Content-Length: counted as it streams
            for _ in range(10):
                yield b"x" * (MAX_BODY // 5)

        response = client.post(
            "/v1/collections",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
        assert_problem(response, 413, "payload_too_large")
        many = [
            ("images", (f"{i}.png", png(RED, i), "image/png"))
            for i in range(MAX_IMAGES + 1)
        ]
        response = client.post("/v1/collections/pets/classify", files=many, data=LABELS)
        assert_problem(response, 422, "invalid_argument")


def test_a_lying_content_length_does_not_hang_or_crash(live: Live) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/collections HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 99999999999\r\nAuthorization: Bearer "
            + live.keys["alice"].encode()
            + b"\r\n\r\n{}"
        )
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 413")


def test_malformed_uploads(live: Live) -> None:
    with live.client("alice") as client:
        for pairs in (
            "not json",
            '{"image": "a.png"}',
            '[{"image": "a.png"}]',
            '[{"image": 3, "caption": "x"}]',
        ):
            response = client.post(
                "/v1/collections/pets/ingest/upload",
                files=[("images", ("a.png", png(RED), "image/png"))],
                data={"pairs": pairs},
            )
            assert_problem(response, 422, "malformed_upload")
        # Bytes that are no image: counted and skipped, never a server error.
        response = client.post(
            "/v1/collections/pets/ingest/upload",
            files=[("images", ("a.png", b"GIF89a garbage", "image/png"))],
            data={"pairs": json.dumps([{"image": "a.png", "caption": "x"}])},
        )
        assert response.status_code == 200, response.text
        assert response.json()["corrupt_images"]["count"] == 1
        response = client.post(
            "/v1/collections/pets/classify",
            files=[("images", ("bad.png", b"\x89PNG broken", "image/png"))],
            data=LABELS,
        )
        assert response.status_code == 200 and response.json()["unreadable"] == [
            "bad.png"
        ]
        for body, content_type in (
            ("{not json", "application/json"),
            ("name=x", "application/x-www-form-urlencoded"),
        ):
            response = client.post(
                "/v1/collections", content=body, headers={"Content-Type": content_type}
            )
            assert_problem(response, 422, "validation_failed")
        response = client.post(
            "/v1/collections/pets/classify",
            content=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        )
        assert_problem(response, 422, "validation_failed")
        assert_problem(
            client.post(
                "/v1/collections/pets/explain",
                files={"image": ("x.png", b"nope", "image/png")},
                data={"labels": ["red"]},
            ),
            422,
            "unencodable_input",
        )


def test_unknown_routes_and_methods_are_problems(live: Live) -> None:
    with live.client("alice") as client:
        assert_problem(client.get("/v1/nothing-here"), 404, "not_found")
        assert_problem(client.delete("/v1/collections"), 405, "method_not_allowed")


def test_nul_characters_are_refused_before_the_catalog(live: Live) -> None:
    # PostgreSQL cannot store NUL in text; found by the fuzz run on PostgreSQL.
    with live.client("alice") as client:
        assert_problem(
            client.post(
                "/v1/collections/pets/deletions",
                json={"legal_basis": "x", "source_record_ids": ["a\x00b"]},
            ),
            422,
            "validation_failed",
        )
        assert_problem(client.get("/v1/collections/pe%00ts"), 422, "invalid_argument")
        response = client.post(
            "/v1/collections/pets/ingest/upload",
            files=[("images", ("a.png", png(RED), "image/png"))],
            data={
                "pairs": json.dumps([{"image": "a.png", "caption": "nul \x00 here"}])
            },
        )
        assert_problem(response, 422, "invalid_argument")
        response = client.post(
            "/v1/collections/pets/classify",
            data={
                "labels": ["red", "blue"],
                "image_paths": ["pairs/red0.png"],
                "version": "v\x00",
            },
        )
        assert_problem(response, 422, "invalid_argument")


def test_ids_too_large_for_the_catalog_are_refused(live: Live) -> None:
    # A 64-bit ingest-run id reached SQLite as an OverflowError; found by the fuzz run.
    with live.client("alice") as client:
        response = client.post(
            "/v1/collections/pets/versions", json={"name": "v9", "ingest_runs": [2**40]}
        )
        assert_problem(response, 422, "validation_failed")
        assert_problem(client.get(f"/v1/deletions/{2**40}"), 422, "validation_failed")
        response = client.post(
            "/v1/collections/pets/consent",
            json={"status": "revoked", "anchor_ids": [str(2**64)]},
        )
        assert_problem(response, 422, "invalid_argument")
