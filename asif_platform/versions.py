"""Frozen versions of a collection: immutable anchor sets that queries can pin.

How a version lives in Qdrant: every member point lists the version's name in its
``versions`` payload field (a keyword index), and a query on the version adds the
filter ``versions = NAME`` to both sides' searches. We chose this over a Qdrant
collection (or alias) per version because a version then costs a few bytes of payload
per member instead of a copy of every vector, creating one writes payload only, and
the same HNSW graph serves every version; the price is a filtered search (measured by
``benchmarks/data_centric_loop.py``).

The catalog is the source of truth: the version and its members are committed first
(status ``building``), then the payloads are written, then the status becomes
``ready``. A crash in between leaves a building version that cannot be queried;
running the same ``asif version create`` again completes it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from asif_platform.catalog import Anchor, Collection, Version, VersionMember, VersionRedaction
from asif_platform.errors import AlreadyExists, ConfigError, NotFound
from asif_platform.store import AnchorFilter

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["VersionInfo", "VersionSelector", "create_version", "diff_versions",
           "get_version", "list_versions", "version_filter"]

logger = logging.getLogger(__name__)

VERSIONS_FIELD = "versions"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_CHUNK = 900  # below SQLite's bound-parameter limit


@dataclass(frozen=True)
class VersionSelector:
    """Which of a collection's anchors a version takes; empty takes them all.

    Attributes:
        source_datasets: Keep anchors from these source datasets.
        ingest_runs: Keep anchors written by these ingest runs.
        licenses: Keep anchors under these (normalised SPDX) licenses.
        consent: Keep anchors whose consent status is one of these.
        ingested_after: Keep anchors ingested at or after this time.
        ingested_before: Keep anchors ingested before this time.
    """

    source_datasets: tuple[str, ...] = ()
    ingest_runs: tuple[int, ...] = ()
    ingested_after: datetime | None = None
    ingested_before: datetime | None = None
    licenses: tuple[str, ...] = ()
    consent: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_datasets": list(self.source_datasets),
            "ingest_runs": list(self.ingest_runs),
            "licenses": list(self.licenses),
            "consent": list(self.consent),
            "ingested_after": self.ingested_after.isoformat() if self.ingested_after else None,
            "ingested_before": self.ingested_before.isoformat() if self.ingested_before else None,
        }

    def conditions(self) -> list[Any]:
        found: list[Any] = []
        if self.source_datasets:
            found.append(Anchor.source_dataset.in_(self.source_datasets))
        if self.ingest_runs:
            found.append(Anchor.ingest_run_id.in_(self.ingest_runs))
        if self.licenses:
            found.append(Anchor.license.in_(self.licenses))
        if self.consent:
            found.append(Anchor.consent_status.in_(self.consent))
        if self.ingested_after:
            found.append(Anchor.ingested_at >= self.ingested_after)
        if self.ingested_before:
            found.append(Anchor.ingested_at < self.ingested_before)
        return found


@dataclass(frozen=True)
class VersionInfo:
    collection: str
    name: str
    anchors: int
    manifest_sha256: str
    status: str
    selector: dict[str, Any]
    created_by: str
    created_at: str
    by_source: dict[str, int] = field(default_factory=dict)
    # Members removed since by deletion requests: {request id: pairs}.
    redactions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def version_filter(name: str) -> AnchorFilter:
    """The payload filter that restricts a search to one version's anchors."""
    return AnchorFilter(must_match={VERSIONS_FIELD: [name]})


def _manifest(rows: Iterable[tuple[int, str, str]]) -> str:
    digest = hashlib.sha256()
    for anchor_id, image_sha256, caption_sha256 in sorted(rows):
        digest.update(f"{anchor_id}:{image_sha256}:{caption_sha256}\n".encode())
    return digest.hexdigest()


def create_version(
    platform: Platform,
    collection_name: str,
    name: str,
    selector: VersionSelector | None = None,
    *,
    created_by: str = "",
) -> VersionInfo:
    """Freeze the collection's current anchors (or a selected subset) as a version.

    Re-running after an interruption completes a version left ``building``.

    Raises:
        AlreadyExists: A ready version of that name exists.
        ConfigError: Bad name, or nothing selected.
        NotFound: No such collection.
    """
    if not _NAME.match(name):
        raise ConfigError(
            f"invalid version name {name!r}: use 1-63 letters, digits, '.', '-' or '_'"
        )
    selector = selector or VersionSelector()
    collection = platform.get_collection(collection_name, "write")
    with platform.catalog.session() as session:
        version = session.scalar(
            select(Version).where(Version.collection_id == collection.id, Version.name == name)
        )
        if version is not None and version.status == "ready":
            raise AlreadyExists(
                f"version {name!r} of {collection_name!r} already exists and is frozen; "
                "choose another name"
            )
        if version is None:
            rows = session.execute(
                select(Anchor.id, Anchor.image_sha256, Anchor.caption_sha256).where(
                    Anchor.collection_id == collection.id, *selector.conditions()
                )
            ).all()
            if not rows:
                raise ConfigError(
                    f"the selection matches no anchors of {collection_name!r}; "
                    "check the filters"
                )
            version = Version(
                collection_id=collection.id, name=name, selector=selector.to_dict(),
                manifest_sha256=_manifest(rows), anchors=len(rows), status="building",
                created_by=created_by,
            )
            session.add(version)
            session.flush()
            session.add_all(VersionMember(version_id=version.id, anchor_id=row[0]) for row in rows)
            logger.info("version %s of %s: %d members recorded", name, collection_name, len(rows))
        version_id = version.id
        member_ids = session.scalars(
            select(VersionMember.anchor_id).where(VersionMember.version_id == version_id)
        ).all()

    platform.store.ensure_payload_index(collection_name, VERSIONS_FIELD)
    sync_version_payloads(platform, collection, member_ids)

    with platform.catalog.session() as session:
        stored = session.get(Version, version_id)
        assert stored is not None
        stored.status = "ready"
    logger.info("version %s of %s is ready", name, collection_name)
    return get_version(platform, collection_name, name)


def sync_version_payloads(
    platform: Platform, collection: Collection, anchor_ids: Sequence[int]
) -> None:
    """Write each anchor's ``versions`` payload from the catalog, the source of truth."""
    memberships: dict[int, list[str]] = {int(a): [] for a in anchor_ids}
    with platform.catalog.session() as session:
        for start in range(0, len(anchor_ids), _CHUNK):
            chunk = [int(a) for a in anchor_ids[start : start + _CHUNK]]
            for anchor_id, version_name in session.execute(
                select(VersionMember.anchor_id, Version.name)
                .join(Version, Version.id == VersionMember.version_id)
                .where(Version.collection_id == collection.id,
                       VersionMember.anchor_id.in_(chunk))
            ):
                memberships[anchor_id].append(version_name)
    groups: dict[tuple[str, ...], list[int]] = {}
    for anchor_id, names in memberships.items():
        groups.setdefault(tuple(sorted(names)), []).append(anchor_id)
    for names, ids in groups.items():
        platform.store.set_payload(collection.name, ids, {VERSIONS_FIELD: list(names)})


def _info(session: Any, collection: Collection, version: Version) -> VersionInfo:
    by_source = dict(
        session.execute(
            select(Anchor.source_dataset, func.count())
            .join(VersionMember, VersionMember.anchor_id == Anchor.id)
            .where(VersionMember.version_id == version.id)
            .group_by(Anchor.source_dataset)
        ).all()
    )
    redactions = {
        str(request): count for request, count in session.execute(
            select(VersionRedaction.request_id, func.count())
            .where(VersionRedaction.version_id == version.id)
            .group_by(VersionRedaction.request_id)
        )
    }
    return VersionInfo(
        collection=collection.name, name=version.name, anchors=version.anchors,
        manifest_sha256=version.manifest_sha256, status=version.status,
        selector=version.selector, created_by=version.created_by,
        created_at=version.created_at.isoformat(), by_source=by_source,
        redactions=redactions,
    )


def _version_row(session: Any, collection: Collection, name: str) -> Version:
    version = session.scalar(
        select(Version).where(Version.collection_id == collection.id, Version.name == name)
    )
    if version is None:
        raise NotFound(
            f"collection {collection.name!r} has no version {name!r}; "
            "see `asif version list`"
        )
    return version


def get_version(platform: Platform, collection_name: str, name: str) -> VersionInfo:
    collection = platform.get_collection(collection_name)
    with platform.catalog.session() as session:
        return _info(session, collection, _version_row(session, collection, name))


def require_ready(platform: Platform, collection_name: str, name: str) -> AnchorFilter:
    """The filter of a ready version; a building one is refused with what to run."""
    info = get_version(platform, collection_name, name)
    if info.status != "ready":
        raise ConfigError(
            f"version {name!r} of {collection_name!r} was interrupted while being built; "
            f"run `asif version create {collection_name} {name}` again to complete it"
        )
    return version_filter(name)


def list_versions(platform: Platform, collection_name: str) -> list[VersionInfo]:
    collection = platform.get_collection(collection_name)
    with platform.catalog.session() as session:
        versions = session.scalars(
            select(Version).where(Version.collection_id == collection.id).order_by(Version.id)
        ).all()
        return [_info(session, collection, version) for version in versions]


def diff_versions(
    platform: Platform, collection_name: str, old: str, new: str, *, samples: int = 5
) -> dict[str, Any]:
    """Anchors added and removed from version ``old`` to ``new``, by source dataset and
    license. A removed anchor whose row a deletion request dropped counts as "?"."""
    collection = platform.get_collection(collection_name)
    with platform.catalog.session() as session:
        members = {}
        for name in (old, new):
            version = _version_row(session, collection, name)
            members[name] = set(session.scalars(
                select(VersionMember.anchor_id).where(VersionMember.version_id == version.id)
            ))
        added = sorted(members[new] - members[old])
        removed = sorted(members[old] - members[new])
        source: dict[int, str] = {}
        license_of: dict[int, str] = {}
        for ids in (added, removed):
            for start in range(0, len(ids), _CHUNK):
                for anchor_id, dataset, license_ in session.execute(
                    select(Anchor.id, Anchor.source_dataset, Anchor.license)
                    .where(Anchor.id.in_(ids[start : start + _CHUNK]))
                ):
                    source[anchor_id] = dataset
                    license_of[anchor_id] = license_ or "unknown"
    return {
        "collection": collection_name,
        "from": old,
        "to": new,
        "added": len(added),
        "removed": len(removed),
        "unchanged": len(members[old] & members[new]),
        "added_by_source": dict(Counter(source.get(a, "?") for a in added)),
        "removed_by_source": dict(Counter(source.get(a, "?") for a in removed)),
        "added_by_license": dict(Counter(license_of.get(a, "?") for a in added)),
        "removed_by_license": dict(Counter(license_of.get(a, "?") for a in removed)),
        "added_sample_ids": [str(a) for a in added[:samples]],
        "removed_sample_ids": [str(a) for a in removed[:samples]],
    }
