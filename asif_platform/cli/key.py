"""``asif key create|list|revoke``: API keys of the HTTP service."""

from __future__ import annotations

from typing import Any

import click

from asif_platform import apikeys
from asif_platform.cli import cli, emit, json_option, platform_from


@cli.group()
def key() -> None:
    """API keys for `asif serve`; only their sha256 is stored."""


def _row(d: dict[str, Any]) -> str:
    state = f"revoked {d['revoked_at'][:19]}" if d["revoked_at"] else "active"
    label = f"  {d['label']}" if d["label"] else ""
    return f"{d['id']:>5}  {d['prefix']}  {d['principal']:<16} {state}{label}"


@key.command()
@click.argument("principal")
@click.option(
    "--label", default="", help="A note on what the key is for; default none."
)
@json_option
@click.pass_context
def create(ctx: click.Context, principal: str, label: str, as_json: bool) -> None:
    """Create an API key acting as PRINCIPAL and print its token once.

    Example: asif key create alice --label "notebook"
    """
    with platform_from(ctx) as platform:
        info, token = apikeys.create_key(platform, principal, label=label)
    data = {**info.to_dict(), "token": token}
    emit(
        data,
        as_json,
        lambda d: (
            f"key {d['id']} for {d['principal']}: {d['token']}\n"
            "store it now: it is not shown again"
        ),
    )


@key.command(name="list")
@click.option("--principal", help="Only this principal's keys; default all.")
@json_option
@click.pass_context
def list_(ctx: click.Context, principal: str | None, as_json: bool) -> None:
    """List API keys (ids, prefixes, principals; never tokens).

    Example: asif key list --principal alice
    """
    with platform_from(ctx) as platform:
        rows = [info.to_dict() for info in apikeys.list_keys(platform, principal)]
    emit(rows, as_json, lambda rs: "\n".join(_row(r) for r in rs) or "no keys")


@key.command()
@click.argument("key_id", type=int)
@json_option
@click.pass_context
def revoke(ctx: click.Context, key_id: int, as_json: bool) -> None:
    """Revoke key KEY_ID: requests with it are refused from now on.

    Example: asif key revoke 3
    """
    with platform_from(ctx) as platform:
        emit(apikeys.revoke_key(platform, key_id).to_dict(), as_json, _row)
