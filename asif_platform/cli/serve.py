"""``asif serve``: the HTTP service."""

from __future__ import annotations

import fcntl
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from asif_platform.cli import cli


@cli.command()
@click.option(
    "--host", help="Address to listen on; default $ASIF_SERVICE_HOST (127.0.0.1)."
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="Port to listen on; default $ASIF_SERVICE_PORT (8000).",
)
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info"]),
    default="info",
    show_default=True,
    help="uvicorn's log level.",
)
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, log_level: str
) -> None:
    """Serve the HTTP API (OpenAPI at /v1/openapi.json) until interrupted.

    One process: the embedded Qdrant Edge store allows a single one. Requests
    authenticate with keys from `asif key create`.

    Example: ASIF_SERVICE_DATA_ROOT=/srv/pairs asif serve --host 0.0.0.0 --port 8000
    """
    import uvicorn

    from asif_platform.errors import AsifError
    from asif_platform.service import create_app

    settings = ctx.obj["settings"]
    settings = replace(
        settings,
        service_host=host or settings.service_host,
        service_port=port or settings.service_port,
    )
    if settings.qdrant_url is None:
        _lock_data_directory(settings.home)
    try:
        app = create_app(settings)
    except AsifError as exc:
        raise click.ClickException(str(exc)) from exc
    uvicorn.run(
        app,
        host=settings.service_host,
        port=settings.service_port,
        log_level=log_level,
        workers=1,
        proxy_headers=False,
    )


def _lock_data_directory(home: Path) -> None:
    """Refuse a second server on the same embedded store, before it takes any shard
    from the first (which would then answer 503 to every request)."""
    home.mkdir(parents=True, exist_ok=True)
    handle = open(home / "serve.lock", "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise click.ClickException(
            f"another `asif serve` uses {home}; the embedded Qdrant store serves one "
            "process (use a Qdrant server, ASIF_QDRANT_URL, for several)"
        ) from None
    _held.append(handle)


_held: list[Any] = []
