"""A schema-driven fuzz run (schemathesis) against a live server: no server errors.

Every operation of the OpenAPI schema gets generated requests, valid (positive) and
invalid (negative), sent with alice's key; half of the cases of operations on a
collection target the populated ``pets``, so that bodies reach the handlers rather
than stopping at a 404. Each response is checked for: no 5xx, a documented status
code, a documented content type and a body matching the response schema. Set
ASIF_FUZZ_EXAMPLES for a longer run (default 8 cases per operation and mode).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from service_support import Live, live_fixture  # noqa: F401 - provides `live`

EXAMPLES = int(os.environ.get("ASIF_FUZZ_EXAMPLES", "8"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_fuzz_finds_no_server_error(live: Live, tmp_path: Path) -> None:
    schema = schemathesis.openapi.from_url(f"{live.url}/v1/openapi.json")
    headers = {"Authorization": f"Bearer {live.keys['alice']}"}
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: list[str] = []
    without_negative: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                label = case.operation.label
                if "name" in (case.path_parameters or {}) and cases[label] % 2 == 0:
                    case.path_parameters["name"] = "pets"
                cases[label] += 1
                response = case.call(base_url=live.url, headers=headers)
                statuses[response.status_code] += 1
                try:
                    case.validate_response(response, checks=CHECKS)
                except AssertionError as failure:
                    failures.append(
                        f"{label} -> {response.status_code}: "
                        f"{str(failure).splitlines()[0]}"
                    )

            try:
                run()
            except Unsatisfiable:
                # Nothing to break: an operation without parameters has no invalid input.
                assert mode is GenerationMode.NEGATIVE, operation.label
                without_negative.append(operation.label)

    summary = (
        f"fuzz: {sum(cases.values())} cases over {len(cases)} operations, "
        f"statuses {dict(sorted(statuses.items()))}; no invalid input exists for "
        f"{sorted(without_negative)}"
    )
    print(f"\n{summary}")
    (tmp_path / "fuzz-summary.txt").write_text(summary + "\n" + "\n".join(failures))
    assert len(cases) == len(list(schema.get_all_operations())) >= 20
    assert not [status for status in statuses if status >= 500], failures
    assert not failures, "\n".join(sorted(set(failures))[:20])
