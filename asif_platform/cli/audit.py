"""``asif audit verify|list``."""

from __future__ import annotations

from typing import Any

import click
from asif_platform.audit import verify_chain, visible_entries
from asif_platform.cli import cli, emit, json_option, platform_from


@cli.group()
def audit() -> None:
    """The append-only, hash-chained audit log."""


@audit.command()
@json_option
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check every link of the chain; name the first broken entry (exit 1 if any).

    Example: asif audit verify
    """
    with platform_from(ctx) as platform:
        check = verify_chain(platform)
    data = {"entries": check.entries, "ok": check.ok, "first_broken": check.first_broken,
            "reason": check.reason}
    emit(data, as_json, lambda d: f"audit log intact: {d['entries']} entries" if d["ok"] else
         f"audit log BROKEN at entry {d['first_broken']}: {d['reason']}")
    if not check.ok:
        ctx.exit(1)


@audit.command(name="list")
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True,
              help="How many of the latest entries.")
@click.option("--collection", help="Only entries about this collection (owners).")
@json_option
@click.pass_context
def list_(ctx: click.Context, last: int, collection: str | None, as_json: bool) -> None:
    """Show the latest audit entries you may read: your own actions and those about
    the collections you own.

    Example: asif audit list --collection flickr8k --last 50
    """
    with platform_from(ctx) as platform:
        entries = visible_entries(platform, collection=collection, last=last)
    rows = [{"id": e.id, "at": e.at.isoformat(), "principal": e.principal,
             "action": e.action, "target": e.target, "outcome": e.outcome,
             "details": e.details, "entry_sha256": e.entry_sha256} for e in entries]

    def text(rs: list[dict[str, Any]]) -> str:
        return "\n".join(f"{r['id']:>6} {r['at'][:19]} {r['principal']:<12} {r['action']:<22} "
                         f"{r['outcome']:<8} {r['target']}" for r in rs)

    emit(rows, as_json, text)
