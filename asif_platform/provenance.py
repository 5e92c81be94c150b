"""Provenance and consent of a pair: licenses (SPDX), consent states, defaults per ingest.

Licenses are SPDX identifiers or expressions, validated and normalised with the
``license-expression`` library; an unknown id is refused with the closest valid one.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache
from typing import Any

from asif_platform.catalog import unstorable
from asif_platform.errors import ConfigError

__all__ = [
    "CONSENT_BASES",
    "CONSENT_STATUSES",
    "LICENSE_CLASSES",
    "Provenance",
    "license_class",
    "normalise_license",
]

CONSENT_STATUSES = ("granted", "revoked", "unknown", "expired")
CONSENT_BASES = ("license", "explicit", "other")
LICENSE_CLASSES = ("commercial", "non-commercial", "unknown")


@cache
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def normalise_license(expression: str) -> str:
    """The canonical form of an SPDX license id or expression.

    Raises:
        ConfigError: Unparseable, or an unknown id (with the closest valid suggestion).
    """
    licensing = _licensing()
    try:
        info = licensing.validate(expression.strip())
    except Exception as error:
        # validate() raises instead of reporting some malformed expressions
        # (AttributeError on "MIT AND", IndexError on "() AND ()"):
        # https://github.com/aboutcode-org/license-expression/issues/114
        # https://github.com/aboutcode-org/license-expression/issues/97
        raise ConfigError(f"invalid SPDX license expression {expression!r}") from error
    if info.invalid_symbols:
        unknown = info.invalid_symbols[0]
        keys = {str(symbol.key).lower(): str(symbol.key) for symbol in licensing.known_symbols.values()}
        close = difflib.get_close_matches(str(unknown).lower(), keys, n=1, cutoff=0.6)
        hint = f"; did you mean {keys[close[0]]!r}?" if close else "; see https://spdx.org/licenses/"
        raise ConfigError(f"unknown SPDX license id {str(unknown)!r}{hint}")
    if info.errors or not info.normalized_expression:
        raise ConfigError(f"invalid SPDX license expression {expression!r}: {'; '.join(info.errors)}")
    return str(info.normalized_expression)


def license_class(expression: str | None) -> str:
    """``non-commercial`` if any license in the expression forbids commercial use
    (SPDX ids with ``-NC``), ``unknown`` without a license, else ``commercial``."""
    if not expression:
        return "unknown"
    symbols = _licensing().license_keys(expression)
    return "non-commercial" if any("-NC" in key.upper() for key in symbols) else "commercial"


def parse_time(value: Any, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{name} must be an ISO date or time, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Provenance:
    """Where a pair comes from, under which license, and with what consent.

    Given once per ingest (options) and overridden per record by columns of the same
    names in CSV/JSONL sources.
    """

    source_version: str | None = None
    source_url: str | None = None
    license: str | None = None
    creator: str | None = None
    attribution: str | None = None
    consent_status: str = "unknown"
    consent_basis: str | None = None
    consent_expires_at: datetime | None = None
    consent_evidence: str | None = None

    def __post_init__(self) -> None:
        for name, limit in _TEXT_LIMITS.items():
            object.__setattr__(self, name, _text(getattr(self, name), name, limit))
        if self.license is not None:
            object.__setattr__(self, "license", normalise_license(self.license))
        if self.consent_status not in CONSENT_STATUSES:
            raise ConfigError(f"consent status must be one of {', '.join(CONSENT_STATUSES)}, "
                              f"got {self.consent_status!r}")
        if self.consent_basis is not None and self.consent_basis not in CONSENT_BASES:
            raise ConfigError(f"consent basis must be one of {', '.join(CONSENT_BASES)}, "
                              f"got {self.consent_basis!r}")
        expires = parse_time(self.consent_expires_at, "consent_expires_at")
        object.__setattr__(self, "consent_expires_at", expires)
        if self.license is not None and len(self.license) > _TEXT_LIMITS["license"]:
            raise ConfigError(f"license expression is longer than "
                              f"{_TEXT_LIMITS['license']} characters")

    def with_record(self, columns: dict[str, Any]) -> Provenance:
        """These defaults overridden by a record's non-empty provenance columns.

        Columns are named as the fields or as the ingest options (``consent``,
        ``consent-expires``, ...); an invalid value raises ConfigError.
        """
        names = {f.name for f in fields(self)}
        given: dict[str, Any] = {}
        for key, value in columns.items():
            name = str(key).strip().lower().replace("-", "_")
            name = _COLUMN_ALIASES.get(name, name)
            if name in names and value not in (None, ""):
                given[name] = value
        return replace(self, **given) if given else self


# The catalog's column sizes (source_version, license), else a generous bound.
_TEXT_LIMITS = {"source_version": 100, "source_url": 2000, "license": 200, "creator": 2000,
                "attribution": 2000, "consent_evidence": 2000}


def _text(value: Any, name: str, limit: int) -> str | None:
    """A provenance text field: numbers become text; lists, objects, text the catalog
    cannot store and over-long values are refused before anything is stored."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be text, got {type(value).__name__}")
    problem = unstorable(value)
    if problem:
        raise ConfigError(f"{name} {problem}")
    if len(value) > limit:
        raise ConfigError(f"{name} is longer than {limit} characters")
    return value


# Record columns named after the ingest options rather than the fields.
_COLUMN_ALIASES = {"consent": "consent_status", "consent_expires": "consent_expires_at"}
