"""The deletion property under concurrent load, small: fake encoders, four clients."""

from __future__ import annotations

from service_support import Live, live_fixture  # noqa: F401 - provides `live`
from test_endpoints import LABELS

from asif_platform.service.loadcheck import run_load

IMAGES = [
    f"pairs/{colour}{i}.png"
    for colour in ("red", "green", "blue", "yellow")
    for i in range(6)
]


def test_no_answer_after_a_receipt_cites_a_deleted_pair(live: Live) -> None:
    def make_request(number: int) -> dict[str, object]:
        return {
            "data": {
                **LABELS,
                "image_paths": [
                    IMAGES[number % len(IMAGES)],
                    IMAGES[(number * 7 + 3) % len(IMAGES)],
                ],
            }
        }

    report = run_load(
        live.url,
        classify_key=live.keys["carol"],
        delete_key=live.keys["alice"],
        collection="pets",
        make_request=make_request,
        clients=4,
        seconds=3.0,
        deletion_interval=0.3,
        min_deletions=4,
    )
    summary = report.summary()

    assert summary["errors"] == 0, summary
    assert summary["deletions"] >= 4, summary
    assert summary["deleted_pairs_cited_before_their_deletion"] >= 4, summary
    assert summary["answers_after_a_receipt"] >= 10, summary
    assert summary["violations_client_clock"] == 0, summary
    assert summary["violations_server_clock"] == 0, summary
