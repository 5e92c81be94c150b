"""The live-server fixture of the service tests: uvicorn on 127.0.0.1, two teams.

Imported by the test modules (not a conftest, whose module name would shadow
tests/conftest.py for the other tests).

alice owns team ``vision`` and its collection ``pets``; carol is a viewer there;
bob owns team ``other`` and its collection ``secret``. The server is started in a
thread of the test process on a free port and stopped after the test.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import uvicorn
from fakes import fake_loader
from fastapi import FastAPI

from asif_platform import teams
from asif_platform.apikeys import create_key
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.service import create_app
from asif_platform.settings import Settings

MAX_BODY = 300_000
MAX_IMAGES = 8


@dataclass
class Live:
    url: str
    keys: dict[str, str]
    platform: Platform
    data_root: Path

    def client(self, who: str | None = None, **headers: str) -> httpx.Client:
        if who is not None:
            headers["Authorization"] = f"Bearer {self.keys[who]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def populate(platform: Platform, data_root: Path) -> dict[str, str]:
    """Teams, collections, pairs and keys; returns each principal's token."""
    alice, bob = platform.as_principal("alice"), platform.as_principal("bob")
    teams.create_team(alice, "vision")
    teams.add_member(alice, "vision", "carol", "viewer")
    alice.create_collection("pets", team="vision", k=8, p=2.0)
    ingest(
        alice, "pets", read_pairs(data_root / "pairs" / "pairs.jsonl"), progress=False
    )
    teams.create_team(bob, "other")
    bob.create_collection("secret", team="other", k=8, p=2.0)
    ingest(
        bob, "secret", read_pairs(data_root / "pairs" / "pairs.jsonl"), progress=False
    )
    return {who: create_key(platform, who)[1] for who in ("alice", "bob", "carol")}


@pytest.fixture(name="live")
def live_fixture(settings: Settings, pair_folder: Path, tmp_path: Path) -> Iterator[Live]:
    data_root = tmp_path / "data-root"
    shutil.copytree(pair_folder, data_root / "pairs")
    settings = replace(
        settings,
        service_data_root=data_root,
        service_max_body_bytes=MAX_BODY,
        service_max_images=MAX_IMAGES,
    )
    platform = Platform(settings, encoder_loader=fake_loader)  # type: ignore[arg-type]
    keys = populate(platform, data_root)
    with serving(create_app(settings, platform=platform)) as url:
        yield Live(url, keys, platform, data_root)
    platform.close()
