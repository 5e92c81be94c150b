"""``asif db upgrade|current|history``: the catalog's migrations."""

from __future__ import annotations

import click
from alembic import command
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from asif_platform.catalog.database import (
    _create_engine,
    alembic_config,
    current_revision,
    head_revision,
    upgrade as run_upgrade,
)
from asif_platform.cli import cli, emit, json_option


@cli.group()
def db() -> None:
    """Migrate and inspect the catalog database."""


@db.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@json_option
@click.pass_context
def upgrade(ctx: click.Context, revision: str, as_json: bool) -> None:
    """Migrate the catalog to a revision.

    Example: ASIF_DATABASE_URL=postgresql+psycopg://localhost/asif asif db upgrade
    """
    engine = _create_engine(ctx.obj["settings"].sqlalchemy_url)
    try:
        run_upgrade(engine, revision)
        current = current_revision(engine)
    except CommandError as error:
        raise click.BadParameter(f"{error}; `asif db history` lists the revisions",
                                 param_hint="--revision") from error
    finally:
        engine.dispose()
    emit({"current": current}, as_json, lambda d: f"catalog at revision {d['current']}")


@db.command()
@json_option
@click.pass_context
def current(ctx: click.Context, as_json: bool) -> None:
    """Show the catalog's revision and the newest one this version knows.

    Example: asif db current --json
    """
    engine = _create_engine(ctx.obj["settings"].sqlalchemy_url)
    try:
        data = {"current": current_revision(engine), "head": head_revision()}
    finally:
        engine.dispose()
    emit(data, as_json, lambda d: f"current {d['current'] or 'none'} (head {d['head']})")


@db.command()
@json_option
@click.pass_context
def history(ctx: click.Context, as_json: bool) -> None:
    """List the migrations, newest first.

    Example: asif db history --json
    """
    config = alembic_config(ctx.obj["settings"].sqlalchemy_url)
    if not as_json:
        command.history(config)
        return
    scripts = ScriptDirectory.from_config(config)
    emit([{"revision": script.revision, "down_revision": script.down_revision,
           "message": script.doc} for script in scripts.walk_revisions()], True, str)
