"""The ``asif`` command line: a click group with one module per noun."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import click

from asif_platform import __version__
from asif_platform.errors import AsifError, ConfigError
from asif_platform.platform import Platform
from asif_platform.settings import SETTINGS_HELP, Settings

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(function: F) -> F:
    """Add ``--json``: print one JSON document instead of text."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(function)


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON or through its text renderer."""
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text(data))


@contextmanager
def platform_from(ctx: click.Context) -> Iterator[Platform]:
    """Open the platform for one command and map domain errors to exit codes."""
    try:
        platform = Platform(ctx.obj["settings"])
    except AsifError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        yield platform
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from exc
    except AsifError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        platform.close()


def _settings_epilog() -> str:
    lines = ["Settings (environment variables):", ""]
    for name, default, help_text in SETTINGS_HELP:
        lines.append(f"  {name}: {help_text} Default: {default or 'unset'}.")
    return "\n".join(lines)


@click.group(epilog=_settings_epilog(), context_settings={"max_content_width": 100})
@click.version_option(__version__, prog_name="asif")
@click.option("-v", "--verbose", count=True, help="Log INFO (-v) or DEBUG (-vv) to stderr.")
@click.option("--as", "principal", help="Act as this principal; default $ASIF_USER.")
@click.pass_context
def cli(ctx: click.Context, verbose: int, principal: str | None) -> None:
    """ASIF Platform: a CLIP-like model made of anchor image-caption pairs.

    Example: asif collection create flickr8k
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    ctx.ensure_object(dict)
    ctx.obj.setdefault("settings", settings)
    if principal:
        try:
            ctx.obj["settings"] = replace(ctx.obj["settings"], principal=principal)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from exc


def main() -> None:
    cli(prog_name="asif")


# Register the nouns (imports at the end: each module decorates onto ``cli``).
from asif_platform.cli import (  # noqa: E402, F401
    audit,
    collection,
    consent,
    db,
    deletion,
    doctor,
    experiment,
    ingest,
    key,
    query,
    serve,
    team,
    version,
)
