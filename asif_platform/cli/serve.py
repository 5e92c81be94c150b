"""``asif serve``: the HTTP service."""

from __future__ import annotations

from dataclasses import replace

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
