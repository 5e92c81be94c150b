"""API keys of the HTTP service: created, listed and revoked from the CLI.

A key is a high-entropy token ``asif_<prefix>_<secret>``. The catalog keeps its
public prefix (to find the row) and the sha256 of the whole token, never the token:
it is shown once, when the key is created. A request that presents the token acts as
the key's principal, and the team roles of that principal apply as on the CLI.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from asif_platform.audit import audit
from asif_platform.catalog import ApiKey, Catalog, utcnow
from asif_platform.errors import ConfigError, NotFound

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = [
    "TOKEN_PREFIX",
    "ApiKeyInfo",
    "authenticate",
    "create_key",
    "list_keys",
    "parse_prefix",
    "revoke_key",
]

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "asif_"
_PREFIX_BYTES = 6  # 12 hex characters: public, only to find the row
_SECRET_BYTES = 32  # 256 bits of secret


@dataclass(frozen=True)
class ApiKeyInfo:
    """What may be shown about a key: never its token or hash."""

    id: int
    prefix: str
    principal: str
    label: str
    created_by: str
    created_at: str
    revoked_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(row: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row.id,
        prefix=row.prefix,
        principal=row.principal,
        label=row.label,
        created_by=row.created_by,
        created_at=row.created_at.isoformat(),
        revoked_at=row.revoked_at.isoformat() if row.revoked_at else None,
    )


def create_key(
    platform: Platform, principal: str, *, label: str = ""
) -> tuple[ApiKeyInfo, str]:
    """Make a key for ``principal``; returns its description and the token (shown once).

    Raises:
        ConfigError: An empty principal or an over-long principal or label.
    """
    principal = principal.strip()
    if not principal or len(principal) > 200:
        raise ConfigError("a key needs a principal of 1-200 characters")
    if len(label) > 200:
        raise ConfigError("a key label has at most 200 characters")

    prefix = secrets.token_hex(_PREFIX_BYTES)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    with platform.catalog.session() as session:
        row = ApiKey(
            prefix=prefix,
            key_sha256=_sha256(token),
            principal=principal,
            label=label,
            created_by=platform.settings.principal,
        )
        session.add(row)
        session.flush()
        info = _info(row)

    logger.info("created API key %d (prefix %s)", info.id, prefix)
    audit(
        platform,
        "key.create",
        f"key:{info.id}",
        details={"prefix": prefix, "for": principal},
    )
    return info, token


def list_keys(platform: Platform, principal: str | None = None) -> list[ApiKeyInfo]:
    """Every key, or one principal's, oldest first."""
    query = select(ApiKey).order_by(ApiKey.id)
    if principal is not None:
        query = query.where(ApiKey.principal == principal)
    with platform.catalog.session() as session:
        return [_info(row) for row in session.scalars(query)]


def revoke_key(platform: Platform, key_id: int) -> ApiKeyInfo:
    """Refuse the key from now on (revoking twice keeps the first time).

    Raises:
        NotFound: No key with that id.
    """
    with platform.catalog.session() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise NotFound(f"no API key {key_id}; `asif key list` shows them")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        info = _info(row)

    logger.info("revoked API key %d", key_id)
    audit(platform, "key.revoke", f"key:{key_id}", details={"prefix": info.prefix})
    return info


def parse_prefix(token: str) -> str | None:
    """The public prefix of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    prefix, underscore, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not underscore or not secret or len(prefix) != 2 * _PREFIX_BYTES:
        return None
    return prefix


def authenticate(catalog: Catalog, token: str) -> str | None:
    """The principal of a valid, unrevoked token, else None."""
    prefix = parse_prefix(token)
    if prefix is None:
        return None
    with catalog.session() as session:
        row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.key_sha256, _sha256(token)):
        return None
    return row.principal
