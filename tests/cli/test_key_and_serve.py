"""``asif key create|list|revoke`` through CliRunner, and ``asif serve`` as a process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from asif_platform.apikeys import authenticate, create_key
from asif_platform.catalog import AuditEntry
from asif_platform.cli import cli
from asif_platform.platform import Platform
from asif_platform.settings import Settings


def ok(result: Result) -> dict:  # type: ignore[type-arg]
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def test_key_create_list_revoke(settings: Settings) -> None:
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(cli, list(args), obj={"settings": settings})

    created = ok(run("key", "create", "alice", "--label", "notebook", "--json"))
    token = created["token"]
    assert token.startswith(f"asif_{created['prefix']}_") and len(token) > 50
    listed = ok(run("key", "list", "--json"))
    assert [(k["id"], k["principal"], k["revoked_at"]) for k in listed] == [
        (created["id"], "alice", None)
    ]
    assert token not in json.dumps(listed)
    assert ok(run("key", "list", "--principal", "bob", "--json")) == []

    platform = Platform(settings)
    assert authenticate(platform.catalog, token) == "alice"
    revoked = ok(run("key", "revoke", str(created["id"]), "--json"))
    assert revoked["revoked_at"] is not None
    assert authenticate(platform.catalog, token) is None
    with platform.catalog.session() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    platform.close()
    assert {"key.create", "key.revoke"} <= set(actions)

    missing = run("key", "revoke", "999")
    assert missing.exit_code == 1 and "no API key 999" in missing.output
    assert run("key", "create", " ").exit_code == 2


def test_asif_serve_answers_on_loopback(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", principal="admin")
    platform = Platform(settings)
    _, token = create_key(platform, "alice")
    platform.close()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "ASIF_HOME": str(settings.home),
        "ASIF_DATABASE_URL": "",
        "ASIF_QDRANT_URL": "",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "asif_platform",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"{url}/v1/health").json()["status"] == "ok"
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"asif serve did not start: {server.stdout.read()!r}")  # type: ignore[union-attr]
                time.sleep(0.2)
        answer = httpx.get(f"{url}/v1/whoami", headers={"X-API-Key": token})
        assert answer.json() == {"principal": "alice", "teams": {}}
        assert httpx.get(f"{url}/v1/collections").status_code == 401

        # A second server on the same embedded store is refused before it starts.
        second = subprocess.run(
            [sys.executable, "-m", "asif_platform", "serve", "--port", str(port + 1)],
            env=env, capture_output=True, text=True, timeout=60,
        )
        assert second.returncode == 1 and "another `asif serve` uses" in second.stderr
        assert httpx.get(f"{url}/v1/health").json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=30)
