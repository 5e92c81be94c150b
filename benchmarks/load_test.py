"""Bounded load test of the HTTP service on loopback, with deletions under load.

    .venv/bin/python benchmarks/load_test.py [--images 400] [--clients 50] [--seconds 60]

Builds a throwaway ASIF_HOME with the bundled encoders and a small real anchor
collection (the first N Flickr8k training images, five captions each), creates a
viewer key and an editor key, and starts `asif serve` as a subprocess on a free
127.0.0.1 port. Then 50 clients classify CIFAR-10 test images (one upload per request,
the ten CIFAR-10 classes as labels) for a fixed time while one more client deletes,
every few seconds, a pair that an answer has just cited. Prints throughput, p50/p95
latency and errors, checks that no answer produced after a deletion's receipt cites
a deleted pair, and writes everything to benchmarks/results/load_test.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from asif_platform import teams
from asif_platform.apikeys import create_key
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_flickr
from asif_platform.platform import Platform
from asif_platform.service.loadcheck import run_load
from asif_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FLICKR = DATA / "flickr8k"
CIFAR = DATA / "cifar10" / "test"
RESULTS = ROOT / "benchmarks" / "results"
CLASSES = sorted(p.name for p in CIFAR.iterdir() if p.is_dir())


def build_home(home: Path, images: int) -> dict[str, str]:
    """A collection of the first ``images`` Flickr8k training images; returns keys."""
    split = home / "split.txt"
    names = (FLICKR / "Flickr_8k.trainImages.txt").read_text().split()[:images]
    split.write_text("\n".join(names) + "\n")
    settings = Settings(home=home / "asif-data", principal="loadtest-admin")
    platform = Platform(settings)
    owner = platform.as_principal("owner")
    teams.create_team(owner, "vision")
    teams.add_member(owner, "vision", "viewer", "viewer")
    teams.add_member(owner, "vision", "editor", "editor")
    owner.create_collection("flickr", team="vision", k=800, p=4.0)
    started = time.perf_counter()
    records = read_flickr(
        FLICKR / "Flickr8k.token.txt", image_dir=FLICKR / "images", split_files=[split]
    )
    report = ingest(owner, "flickr", records, progress=False)
    print(
        f"ingested {report.pairs_added} pairs of {len(names)} images in "
        f"{time.perf_counter() - started:.1f}s",
        flush=True,
    )
    keys = {who: create_key(platform, who)[1] for who in ("viewer", "editor")}
    platform.close()
    return keys


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ASIF_HOME": str(home / "asif-data"),
        "ASIF_DATABASE_URL": "",
        "ASIF_QDRANT_URL": "",
        "ASIF_SERVICE_DATA_ROOT": "",
    }
    log = open(home / "server.log", "wb")  # noqa: SIM115 - closed with the process
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
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).status_code
                == 200
            ):
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError(f"the server did not start; see {home / 'server.log'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--images", type=int, default=400, help="Flickr8k anchor images."
    )
    parser.add_argument(
        "--clients", type=int, default=50, help="Concurrent classify clients."
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="Duration of the load."
    )
    parser.add_argument(
        "--deletion-interval",
        type=float,
        default=2.0,
        help="Seconds between deletions.",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="asif-load-"))
    queries = sorted(p for label in CLASSES for p in (CIFAR / label).iterdir())[::10]
    payloads = [(p.name, p.read_bytes()) for p in queries]

    def make_request(number: int) -> dict[str, object]:
        name, data = payloads[number % len(payloads)]
        return {
            "files": [("images", (name, data, "image/jpeg"))],
            "data": {"labels": CLASSES},
        }

    server = None
    try:
        keys = build_home(home, args.images)
        port = free_port()
        server = start_server(home, port)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(
            base_url=url,
            timeout=300,
            headers={"Authorization": f"Bearer {keys['viewer']}"},
        ) as client:
            warm = client.post("/v1/collections/flickr/classify", **make_request(0))
            warm.raise_for_status()
        report = run_load(
            url,
            classify_key=keys["viewer"],
            delete_key=keys["editor"],
            collection="flickr",
            make_request=make_request,
            clients=args.clients,
            seconds=args.seconds,
            deletion_interval=args.deletion_interval,
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=60)

    summary = {
        "anchor_images": args.images,
        "cpu_cores": os.cpu_count(),
        "query_images": len(payloads),
        **report.summary(),
    }
    latency = summary["latency_ms"]
    rows = [
        ("clients", summary["clients"]),
        ("duration s", summary["seconds"]),
        ("requests", summary["requests"]),
        ("ok", summary["ok"]),
        ("errors", summary["errors"]),
        ("throughput req/s", summary["throughput_rps"]),
        ("p50 ms", latency["p50"]),
        ("p95 ms", latency["p95"]),
        ("p99 ms", latency["p99"]),
        ("deletions applied", summary["deletions"]),
        (
            "deleted pairs cited before deletion",
            summary["deleted_pairs_cited_before_their_deletion"],
        ),
        ("answers checked after a receipt", summary["answers_after_a_receipt"]),
        ("violations (client clock)", summary["violations_client_clock"]),
        ("violations (server clock)", summary["violations_server_clock"]),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load_test.json").write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(home, ignore_errors=True)
    if summary["violations_client_clock"] or summary["violations_server_clock"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
