"""A bounded load run against a live service, and the deletion property it checks.

Many clients classify for a fixed time while one more client deletes pairs that
answers have just cited. Every answer and every deletion receipt is recorded; the
property is then: no answer produced after a deletion's receipt cites a deleted pair,
judged on two clocks:

* the client's: an answer whose request was *sent* after the receipt *arrived*;
* the server's: an answer whose ``answered_at`` is after the receipt's
  ``completed_at`` (both stamped by the service).

Used by ``benchmarks/load_test.py`` (real encoders) and by the service tests (fake
encoders, a few clients).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import numpy as np

__all__ = ["Answer", "DeletionReceipt", "LoadReport", "run_load"]

logger = logging.getLogger(__name__)

RequestFactory = Callable[[int], dict[str, Any]]


@dataclass(frozen=True)
class Answer:
    """One classify call as the client saw it."""

    sent: float  # client monotonic clock, seconds
    received: float
    status: int
    answered_at: datetime | None
    contributors: frozenset[str]


@dataclass(frozen=True)
class DeletionReceipt:
    """One applied deletion request as the deleting client saw it."""

    request_id: int
    sent: float
    received: float
    completed_at: datetime
    removed: frozenset[str]


@dataclass
class LoadReport:
    """Throughput, latency, errors and the deletion-property verdict of one run."""

    clients: int
    seconds: float
    answers: list[Answer] = field(default_factory=list)
    deletions: list[DeletionReceipt] = field(default_factory=list)
    client_errors: int = 0  # transport failures: no HTTP answer at all

    def summary(self) -> dict[str, Any]:
        ok = [a for a in self.answers if a.status == 200]
        latencies = np.array([a.received - a.sent for a in ok]) * 1000.0
        by_client_clock, by_server_clock, checked = self.violations()
        statuses: dict[str, int] = {}
        for answer in self.answers:
            statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
        return {
            "clients": self.clients,
            "seconds": round(self.seconds, 2),
            "requests": len(self.answers) + self.client_errors,
            "ok": len(ok),
            "errors": len(self.answers) - len(ok) + self.client_errors,
            "statuses": statuses,
            "transport_errors": self.client_errors,
            "throughput_rps": round(len(ok) / self.seconds, 2) if self.seconds else 0.0,
            "latency_ms": {
                "p50": round(float(np.percentile(latencies, 50)), 1)
                if len(ok)
                else None,
                "p95": round(float(np.percentile(latencies, 95)), 1)
                if len(ok)
                else None,
                "p99": round(float(np.percentile(latencies, 99)), 1)
                if len(ok)
                else None,
                "max": round(float(latencies.max()), 1) if len(ok) else None,
            },
            "deletions": len(self.deletions),
            "pairs_deleted": sum(len(d.removed) for d in self.deletions),
            "deleted_pairs_cited_before_their_deletion": self.cited_before_deletion(),
            "answers_after_a_receipt": checked,
            "violations_client_clock": by_client_clock,
            "violations_server_clock": by_server_clock,
        }

    def violations(self) -> tuple[int, int, int]:
        """(answers citing a pair deleted before they were sent, the same by the
        server's clock, answers checked against at least one receipt)."""
        by_client = by_server = checked = 0
        for answer in self.answers:
            if answer.status != 200:
                continue
            earlier = [d for d in self.deletions if answer.sent > d.received]
            if earlier:
                checked += 1
            if any(answer.contributors & d.removed for d in earlier):
                by_client += 1
            if answer.answered_at is not None and any(
                answer.contributors & d.removed
                for d in self.deletions
                if answer.answered_at > d.completed_at
            ):
                by_server += 1
        return by_client, by_server, checked

    def cited_before_deletion(self) -> int:
        """Deleted pairs some answer cited before the deletion: shows the check bites."""
        cited: set[str] = set()
        for deletion in self.deletions:
            for answer in self.answers:
                if answer.received < deletion.sent:
                    cited |= answer.contributors & deletion.removed
        return len(cited)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def run_load(
    url: str,
    *,
    classify_key: str,
    delete_key: str,
    collection: str,
    make_request: RequestFactory,
    clients: int = 50,
    seconds: float = 60.0,
    deletion_interval: float = 1.0,
    min_deletions: int = 0,
    timeout: float = 120.0,
) -> LoadReport:
    """Classify from ``clients`` threads for ``seconds`` while one more deletes.

    Args:
        url: The service's base URL (loopback).
        classify_key: API key of the classifying clients (a viewer is enough).
        delete_key: API key of the deleting client (an editor).
        collection: The collection to query and delete from.
        make_request: Given a request number, the keyword arguments of one
            ``httpx.Client.post`` to the classify route (``files``, ``data``).
        clients: Concurrent classifying clients. Defaults to 50.
        seconds: How long the clients classify. Defaults to 60.
        deletion_interval: Pause between deletions, in seconds. Defaults to 1.
        min_deletions: Keep going past ``seconds`` until this many deletions have
            receipts (at most until 5 times ``seconds``). Defaults to 0.
        timeout: Per-request timeout. Defaults to 120 seconds.
    """
    report = LoadReport(clients=clients, seconds=seconds)
    lock = threading.Lock()
    cited: list[str] = []
    stop = threading.Event()
    started = time.monotonic()

    def classify_loop(number: int) -> None:
        counter = number
        with httpx.Client(
            base_url=url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {classify_key}"},
        ) as client:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(
                        f"/v1/collections/{collection}/classify",
                        **make_request(counter),
                    )
                except httpx.HTTPError:
                    with lock:
                        report.client_errors += 1
                    continue
                received = time.monotonic()
                counter += clients
                answered_at, contributors = None, frozenset[str]()
                if response.status_code == 200:
                    body = response.json()
                    answered_at = _parse(body["answered_at"])
                    contributors = frozenset(
                        c for p in body["predictions"] for c in p["contributors"]
                    )
                with lock:
                    report.answers.append(
                        Answer(
                            sent,
                            received,
                            response.status_code,
                            answered_at,
                            contributors,
                        )
                    )
                    cited.extend(contributors)

    def delete_loop() -> None:
        deleted: set[str] = set()
        rng = random.Random(0)
        with httpx.Client(
            base_url=url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {delete_key}"},
        ) as client:
            while not stop.wait(deletion_interval):
                with lock:
                    candidates = [c for c in cited[-500:] if c not in deleted]
                if not candidates:
                    continue
                anchor = rng.choice(candidates)
                sent = time.monotonic()
                created = client.post(
                    f"/v1/collections/{collection}/deletions",
                    json={"legal_basis": "load test", "anchor_ids": [anchor]},
                )
                if created.status_code != 201:
                    logger.warning("deletion request refused: %s", created.status_code)
                    continue
                request_id = created.json()["request"]
                applied = client.post(f"/v1/deletions/{request_id}/apply")
                received = time.monotonic()
                if applied.status_code != 200:
                    logger.warning(
                        "deletion %d failed: %s", request_id, applied.status_code
                    )
                    continue
                receipt = applied.json()
                removed = frozenset(receipt["removed_ids"])
                deleted |= removed
                with lock:
                    report.deletions.append(
                        DeletionReceipt(
                            request_id,
                            sent,
                            received,
                            _parse(receipt["completed_at"]),
                            removed,
                        )
                    )

    threads = [
        threading.Thread(target=classify_loop, args=(n,), daemon=True)
        for n in range(clients)
    ]
    threads.append(threading.Thread(target=delete_loop, daemon=True))
    for thread in threads:
        thread.start()
    deadline, cap = started + seconds, started + max(5 * seconds, seconds + 60)
    while time.monotonic() < cap:
        time.sleep(0.05)
        with lock:
            enough = len(report.deletions) >= min_deletions
        if enough and time.monotonic() >= deadline:
            break
    stop.set()
    for thread in threads:
        thread.join(timeout=timeout)
    report.seconds = time.monotonic() - started
    return report
