"""``asif version create|list|show|diff``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.provenance import CONSENT_STATUSES, normalise_license
from asif_platform.versions import (
    VersionSelector,
    create_version,
    diff_versions,
    get_version,
    list_versions,
)


@cli.group()
def version() -> None:
    """Freeze, list and compare versions of a collection."""


def _version_text(d: dict[str, Any]) -> str:
    sources = ", ".join(f"{name} {count}" for name, count in sorted(d["by_source"].items()))
    redacted = "".join(f", {count} redacted by deletion request {request}"
                       for request, count in d["redactions"].items())
    return (f"{d['collection']}@{d['name']}: {d['anchors']} anchors ({sources}){redacted}, "
            f"{d['status']}, manifest {d['manifest_sha256'][:16]}, created {d['created_at']}")


@version.command()
@click.argument("collection")
@click.argument("name")
@click.option("--source-dataset", "sources", multiple=True,
              help="Keep only pairs from this source dataset (repeatable).")
@click.option("--ingest-run", "runs", multiple=True, type=int,
              help="Keep only pairs from this ingest run (repeatable).")
@click.option("--license", "licenses", multiple=True,
              help="Keep only pairs under this SPDX license (repeatable).")
@click.option("--consent", multiple=True, type=click.Choice(CONSENT_STATUSES),
              help="Keep only pairs with this consent status (repeatable).")
@click.option("--ingested-after", type=click.DateTime(), help="Keep pairs ingested at or after.")
@click.option("--ingested-before", type=click.DateTime(), help="Keep pairs ingested before.")
@json_option
@click.pass_context
def create(ctx: click.Context, collection: str, name: str, sources: tuple[str, ...],
           runs: tuple[int, ...], licenses: tuple[str, ...], consent: tuple[str, ...],
           ingested_after: datetime | None,
           ingested_before: datetime | None, as_json: bool) -> None:
    """Freeze the current anchors of COLLECTION (or a filtered subset) as version NAME.

    A version never changes; if creating it was interrupted, run the same command
    again to complete it.

    Example: asif version create flickr8k v1 --source-dataset flickr8k
    """
    selector = VersionSelector(
        source_datasets=sources, ingest_runs=runs,
        licenses=tuple(normalise_license(name) for name in licenses), consent=consent,
        ingested_after=_utc(ingested_after), ingested_before=_utc(ingested_before),
    )
    with platform_from(ctx) as platform:
        info = create_version(platform, collection, name, selector)
    emit(info.to_dict(), as_json, _version_text)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone() if moment is not None else None


@version.command(name="list")
@click.argument("collection")
@json_option
@click.pass_context
def list_(ctx: click.Context, collection: str, as_json: bool) -> None:
    """List the versions of COLLECTION."""
    with platform_from(ctx) as platform:
        infos = [info.to_dict() for info in list_versions(platform, collection)]
    emit(infos, as_json, lambda rows: "\n".join(map(_version_text, rows)) or
         f"no versions; create one with `asif version create {collection} NAME`")


@version.command()
@click.argument("collection")
@click.argument("name")
@json_option
@click.pass_context
def show(ctx: click.Context, collection: str, name: str, as_json: bool) -> None:
    """Show one version: size by source, selector, manifest hash, status."""
    with platform_from(ctx) as platform:
        info = get_version(platform, collection, name).to_dict()
    emit(info, as_json, lambda d: _version_text(d) + f"\nselector: {d['selector']}")


@version.command()
@click.argument("collection")
@click.argument("old")
@click.argument("new")
@click.option("--samples", type=click.IntRange(min=0), default=5, show_default=True,
              help="Sample anchor ids listed per side.")
@json_option
@click.pass_context
def diff(ctx: click.Context, collection: str, old: str, new: str, samples: int,
         as_json: bool) -> None:
    """Anchors added and removed from version OLD to version NEW, by source dataset.

    Example: asif version diff flickr8k v1 v2
    """
    with platform_from(ctx) as platform:
        data = diff_versions(platform, collection, old, new, samples=samples)

    def text(d: dict[str, Any]) -> str:
        return "\n".join([
            f"{d['collection']}: {d['from']} -> {d['to']}",
            f"  added {d['added']}, removed {d['removed']}, unchanged {d['unchanged']}",
            f"  added by source:   {d['added_by_source']}",
            f"  removed by source: {d['removed_by_source']}",
            f"  added by license:   {d['added_by_license']}",
            f"  removed by license: {d['removed_by_license']}",
            f"  added, e.g.:   {', '.join(d['added_sample_ids'])}",
            f"  removed, e.g.: {', '.join(d['removed_sample_ids'])}",
        ])

    emit(data, as_json, text)
