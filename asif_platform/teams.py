"""Teams, roles and the check every command makes before it touches a collection.

A collection belongs to one team; a principal's role in that team (owner, editor or
viewer) is its role on the collection. Viewers read and query; editors also ingest,
freeze versions and change consent; owners also manage members and settings.
Collections made before teams existed belong to no team and stay open to every
principal until an owner of a team claims them (``asif team claim``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from asif_platform.audit import audit
from asif_platform.catalog import Collection, Membership, Team
from asif_platform.errors import AlreadyExists, ConfigError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["ACTIONS", "ROLES", "TeamInfo", "add_member", "authorize", "claim_collection",
           "create_team", "list_teams", "personal_team", "remove_member"]

ROLES = ("viewer", "editor", "owner")
# The least role each kind of action needs.
ACTIONS = {"read": "viewer", "write": "editor", "admin": "owner"}
_TEAM_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class TeamInfo:
    name: str
    role: str | None
    members: dict[str, str]

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _role(platform: Platform, team_id: int) -> str | None:
    with platform.catalog.session() as session:
        return session.scalar(select(Membership.role).where(
            Membership.team_id == team_id, Membership.principal == platform.settings.principal))


def authorize(platform: Platform, collection: Collection, action: str) -> None:
    """Allow the action or raise (and audit the refusal).

    Raises:
        NotFound: The principal is in no role on the collection (its existence is
            not revealed).
        PermissionDenied: The principal's role is too low for the action.
    """
    if collection.team_id is None:
        return
    needed = ACTIONS[action]
    role = _role(platform, collection.team_id)
    if role is not None and ROLES.index(role) >= ROLES.index(needed):
        return
    if role is None:
        raise collection_not_visible(platform, collection.name, action)
    audit(platform, f"collection.{action}", f"collection:{collection.name}",
          outcome="refused", details={"role": role, "needed": needed})
    raise PermissionDenied(
        f"{platform.settings.principal!r} is a {role} of collection {collection.name!r}; "
        f"this needs the {needed} role (ask an owner: asif team add TEAM PRINCIPAL --role)"
    )


def collection_not_visible(platform: Platform, name: str, action: str) -> NotFound:
    """The error for a missing collection and for another team's, audited as a refusal:
    the same words and the same audit entry, so that nobody learns from either which
    names other teams use."""
    audit(platform, f"collection.{action}", f"collection:{name}", outcome="refused",
          details={"role": None, "needed": ACTIONS[action]})
    return NotFound(
        f"no collection named {name!r} is visible to {platform.settings.principal!r}; "
        "`asif collection list` shows yours and `asif collection create` makes one"
    )


def visible_team_ids(platform: Platform) -> set[int]:
    with platform.catalog.session() as session:
        return set(session.scalars(select(Membership.team_id).where(
            Membership.principal == platform.settings.principal)))


def _team(platform: Platform, name: str) -> Team:
    with platform.catalog.session() as session:
        team = session.scalar(select(Team).where(Team.name == name))
    if team is None or _role(platform, team.id) is None:
        raise NotFound(f"no team named {name!r} that {platform.settings.principal!r} is in")
    return team


def _require_owner(platform: Platform, team: Team, action: str) -> None:
    role = _role(platform, team.id)
    if role != "owner":
        audit(platform, action, f"team:{team.name}", outcome="refused", details={"role": role})
        raise PermissionDenied(
            f"{platform.settings.principal!r} is a {role} of team {team.name!r}; "
            "only its owners can do this"
        )


def create_team(platform: Platform, name: str) -> TeamInfo:
    """A new team with the acting principal as its owner."""
    if not _TEAM_NAME.match(name):
        raise ConfigError(f"invalid team name {name!r}: use 1-63 lower-case letters, "
                          "digits, '-' or '_'")
    with platform.catalog.session() as session:
        if session.scalar(select(Team).where(Team.name == name)):
            raise AlreadyExists(f"team {name!r} already exists")
        team = Team(name=name)
        session.add(team)
        session.flush()
        session.add(Membership(team_id=team.id, principal=platform.settings.principal,
                               role="owner"))
    audit(platform, "team.create", f"team:{name}")
    return team_info(platform, name)


def personal_team(platform: Platform) -> str:
    """The acting principal's own team (made on first use), for collections created
    without ``--team``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", platform.settings.principal.lower()).strip("-")
    name = f"user-{slug or 'anonymous'}"[:63]
    with platform.catalog.session() as session:
        exists = session.scalar(select(Team.id).where(Team.name == name))
    if exists is None:
        create_team(platform, name)
    return name


def add_member(platform: Platform, team_name: str, principal: str, role: str) -> TeamInfo:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    team = _team(platform, team_name)
    _require_owner(platform, team, "team.add_member")
    with platform.catalog.session() as session:
        membership = session.get(Membership, (team.id, principal))
        if membership is None:
            session.add(Membership(team_id=team.id, principal=principal, role=role))
        else:
            membership.role = role
    audit(platform, "team.add_member", f"team:{team_name}",
          details={"member": principal, "role": role})
    return team_info(platform, team_name)


def remove_member(platform: Platform, team_name: str, principal: str) -> TeamInfo:
    team = _team(platform, team_name)
    _require_owner(platform, team, "team.remove_member")
    with platform.catalog.session() as session:
        owners = session.scalars(select(Membership.principal).where(
            Membership.team_id == team.id, Membership.role == "owner")).all()
        if list(owners) == [principal]:
            raise ConfigError(f"{principal!r} is the last owner of {team_name!r}; "
                              "add another owner first")
        membership = session.get(Membership, (team.id, principal))
        if membership is not None:
            session.delete(membership)
    audit(platform, "team.remove_member", f"team:{team_name}", details={"member": principal})
    return team_info(platform, team_name)


def team_info(platform: Platform, name: str) -> TeamInfo:
    team = _team(platform, name)
    with platform.catalog.session() as session:
        members = dict(session.execute(select(Membership.principal, Membership.role).where(
            Membership.team_id == team.id)).all())
    return TeamInfo(name, members.get(platform.settings.principal), members)


def list_teams(platform: Platform) -> list[TeamInfo]:
    with platform.catalog.session() as session:
        names = session.scalars(select(Team.name).where(
            Team.id.in_(visible_team_ids(platform))).order_by(Team.name)).all()
    return [team_info(platform, name) for name in names]


def team_id(platform: Platform, name: str) -> int:
    """The id of a team the principal may place collections in (editor or owner)."""
    team = _team(platform, name)
    role = _role(platform, team.id)
    if role is None or ROLES.index(role) < ROLES.index("editor"):
        audit(platform, "collection.create", f"team:{name}", outcome="refused",
              details={"role": role})
        raise PermissionDenied(f"{platform.settings.principal!r} is a {role} of team "
                               f"{name!r}; creating collections needs the editor role")
    return team.id


def claim_collection(platform: Platform, collection_name: str, team_name: str) -> None:
    """Give a collection that belongs to no team to a team the principal owns."""
    team = _team(platform, team_name)
    _require_owner(platform, team, "collection.claim")
    with platform.catalog.session() as session:
        collection = session.scalar(select(Collection).where(Collection.name == collection_name))
    if collection is None or (collection.team_id is not None
                              and _role(platform, collection.team_id) is None):
        raise collection_not_visible(platform, collection_name, "admin")
    if collection.team_id is not None:
        raise ConfigError(f"collection {collection_name!r} already belongs to a team")
    with platform.catalog.session() as session:
        row = session.get(Collection, collection.id)
        assert row is not None
        if row.team_id is not None:  # claimed meanwhile
            raise ConfigError(f"collection {collection_name!r} already belongs to a team")
        row.team_id = team.id
    audit(platform, "collection.claim", f"collection:{collection_name}",
          details={"team": team_name})
