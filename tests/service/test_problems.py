"""Every domain error has a stable problem code, and every code is documented."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from asif_platform import errors
from asif_platform.service.problems import CODES, ServiceProblem, problem_for

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *subclasses(sub)]
    return found


@pytest.mark.parametrize(
    "error", subclasses(errors.AsifError), ids=lambda c: c.__name__
)
def test_every_domain_error_has_its_own_code(error: type[errors.AsifError]) -> None:
    code = problem_for(error("x"))
    assert code != "internal_error"
    assert code in CODES


def test_the_most_specific_class_decides() -> None:
    assert problem_for(errors.SchemaMismatch("x")) == "schema_mismatch"
    assert problem_for(errors.AnchorStoreError("x")) == "store_unavailable"


def test_every_code_is_in_the_readme() -> None:
    missing = [
        code for code in CODES if f"| `{code}` | {CODES[code][0]} |" not in README
    ]
    assert not missing, f"document these problem codes in README.md: {missing}"


def test_unknown_codes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown problem code"):
        ServiceProblem("no_such_code", "x")


def test_an_unexpected_error_logs_its_class_only(
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A bug answers 500 problem+json; the log has the class and an incident id, never
    the message (it may quote user data) nor a traceback (which ends with it)."""
    from fastapi import FastAPI
    from service_support import serving

    from asif_platform.service.problems import install_handlers

    app = FastAPI()
    install_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a caption someone wrote")

    with caplog.at_level("DEBUG"), serving(app) as url:
        answer = httpx.get(f"{url}/boom", timeout=30)

    assert answer.status_code == 500
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["code"] == "internal_error"
    logged = caplog.text + capfd.readouterr().err  # uvicorn's own handler writes to stderr
    assert "RuntimeError" in logged
    assert "a caption someone wrote" not in logged and "Traceback" not in logged
