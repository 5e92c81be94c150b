"""``asif doctor``: check that Qdrant agrees with the catalog, and repair it."""

from __future__ import annotations

from typing import Any

import click

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.doctor import check, repair

_EXAMPLES = 5  # ids shown per problem in the text output


@cli.command()
@click.argument("collection", required=False)
@click.option("--repair", "do_repair", is_flag=True,
              help="Fix Qdrant from the catalog and check again. Default: off.")
@json_option
@click.pass_context
def doctor(ctx: click.Context, collection: str | None, do_repair: bool,
           as_json: bool) -> None:
    """Compare COLLECTION (default: every collection) in the catalog and in Qdrant.

    Reports anchors missing from Qdrant, orphan points and drifted payloads, by id.
    --repair deletes orphans, rewrites payloads from the catalog and deletes the
    catalog rows of anchors without a point (but not of version members or of
    anchors with a consent change), so that re-running their ingest re-encodes
    them. Exits with 1 while drift remains.

    Example: asif doctor flickr8k --repair
    """
    with platform_from(ctx) as platform:
        reports = check(platform, collection)
        entries = [report.to_dict() for report in reports]
        if do_repair:
            for report, entry in zip(reports, entries, strict=True):
                if not report.consistent:
                    entry["repaired"] = repair(platform, report).to_dict()
            after = {report.collection: report
                     for report in check(platform, collection)}
            for entry in entries:
                if "repaired" in entry:
                    entry["after"] = after[entry["collection"]].to_dict()
    consistent = all(entry.get("after", entry)["consistent"] for entry in entries)

    emit({"consistent": consistent, "collections": entries}, as_json, _text)
    if not consistent:
        ctx.exit(1)


def _text(data: dict[str, Any]) -> str:
    if not data["collections"]:
        return "no collections"
    return "\n".join(_collection_text(entry) for entry in data["collections"])


def _collection_text(entry: dict[str, Any]) -> str:
    lines = [f"{entry['collection']}: " + _state_text(entry, "  ")]
    repaired = entry.get("repaired")
    if repaired is not None:
        lines.append(
            f"  repaired: {repaired['orphans_deleted']} orphans deleted, "
            f"{repaired['payloads_rewritten']} payloads rewritten, "
            f"{repaired['points_reencoded']} points re-encoded, "
            f"{repaired['catalog_rows_deleted']} catalog rows deleted for re-ingest"
        )
        lines.append("  after repair: " + _state_text(entry["after"], "    "))
    advice = repaired["advice"] if repaired is not None else entry["advice"]
    lines.extend(f"  advice: {line}" for line in advice)
    return "\n".join(lines)


def _state_text(report: dict[str, Any], indent: str) -> str:
    points = report["qdrant_points"]
    qdrant = "no Qdrant collection" if points is None else f"{points} Qdrant points"
    counts = f"{report['catalog_anchors']} catalog anchors, {qdrant}"
    if report["consistent"]:
        return f"consistent ({counts})"
    lines = [f"drift ({counts})"]
    drift_ids = [item["id"] for item in report["payload_drift"]]
    drift_fields = sorted(
        {name for item in report["payload_drift"] for name in item["fields"]}
    )
    for label, ids, extra in (
        ("missing in Qdrant", report["missing_in_qdrant"], ""),
        ("orphans in Qdrant", report["orphans_in_qdrant"], ""),
        ("payload drift", drift_ids, f" in fields {', '.join(drift_fields)}"),
    ):
        if ids:
            more = ", ..." if len(ids) > _EXAMPLES else ""
            shown = ", ".join(ids[:_EXAMPLES]) + more
            lines.append(f"{indent}{label}: {len(ids)}{extra}, e.g. {shown}")
    return "\n".join(lines)
