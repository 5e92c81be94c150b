"""``asif team create|add|remove|list|show|claim``."""

from __future__ import annotations

from typing import Any

import click

from asif_platform import teams
from asif_platform.cli import cli, emit, json_option, platform_from


@cli.group()
def team() -> None:
    """Teams own collections; a member's role is its role on them."""


def _text(d: dict[str, Any]) -> str:
    members = ", ".join(f"{who} ({role})" for who, role in sorted(d["members"].items()))
    return f"{d['name']}: your role {d['role']}; members {members}"


@team.command()
@click.argument("name")
@json_option
@click.pass_context
def create(ctx: click.Context, name: str, as_json: bool) -> None:
    """Create team NAME with you as its owner.

    Example: asif --as alice team create vision
    """
    with platform_from(ctx) as platform:
        emit(teams.create_team(platform, name).to_dict(), as_json, _text)


@team.command()
@click.argument("name")
@click.argument("principal")
@click.option("--role", type=click.Choice(teams.ROLES), default="viewer", show_default=True,
              help="Role on the team's collections.")
@json_option
@click.pass_context
def add(ctx: click.Context, name: str, principal: str, role: str, as_json: bool) -> None:
    """Add PRINCIPAL to team NAME, or change its role (owners only).

    Example: asif team add vision bob --role editor
    """
    with platform_from(ctx) as platform:
        emit(teams.add_member(platform, name, principal, role).to_dict(), as_json, _text)


@team.command()
@click.argument("name")
@click.argument("principal")
@json_option
@click.pass_context
def remove(ctx: click.Context, name: str, principal: str, as_json: bool) -> None:
    """Remove PRINCIPAL from team NAME (owners only; a team keeps one owner)."""
    with platform_from(ctx) as platform:
        emit(teams.remove_member(platform, name, principal).to_dict(), as_json, _text)


@team.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the teams you are in."""
    with platform_from(ctx) as platform:
        rows = [info.to_dict() for info in teams.list_teams(platform)]
    emit(rows, as_json, lambda rs: "\n".join(map(_text, rs)) or "you are in no team")


@team.command()
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a team you are in and its members."""
    with platform_from(ctx) as platform:
        emit(teams.team_info(platform, name).to_dict(), as_json, _text)


@team.command()
@click.argument("collection")
@click.argument("name")
@json_option
@click.pass_context
def claim(ctx: click.Context, collection: str, name: str, as_json: bool) -> None:
    """Give COLLECTION, made before teams existed, to team NAME (its owners only).

    Example: asif team claim flickr8k vision
    """
    with platform_from(ctx) as platform:
        teams.claim_collection(platform, collection, name)
    emit({"collection": collection, "team": name}, as_json,
         lambda d: f"collection {d['collection']} now belongs to team {d['team']}")
