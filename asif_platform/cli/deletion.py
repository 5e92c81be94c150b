"""``asif deletion request|preview|apply|status|receipt``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.deletion import (
    NEAR_DUPLICATE_THRESHOLD,
    DeletionSelector,
    apply_request,
    create_request,
    near_duplicates,
    preview_request,
    request_status,
)


@cli.group()
def deletion() -> None:
    """Remove pairs for good: request, preview, apply (crash-safe), receipt."""


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


@deletion.command()
@click.argument("collection")
@click.option("--anchor-id", "anchor_ids", multiple=True, type=int, help="Anchor id.")
@click.option("--record-id", "record_ids", multiple=True, help="Source record id or URI.")
@click.option("--records-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file of source record ids or Flickr image names, one per line.")
@click.option("--source-dataset", "datasets", multiple=True, help="A whole source dataset.")
@click.option("--contributor", "creators", multiple=True, help="Creator of the pairs.")
@click.option("--license", "licenses", multiple=True, help="SPDX license of the pairs.")
@click.option("--caption-contains", "captions", multiple=True,
              help="Case-insensitive text the caption contains.")
@click.option("--image-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="An image: its exact copies (sha256), plus near duplicates with --near.")
@click.option("--near", is_flag=True,
              help=f"Also take near duplicates of --image-file (cosine >= "
                   f"{NEAR_DUPLICATE_THRESHOLD}); review them with `deletion preview`.")
@click.option("--basis", required=True, help="Legal basis, e.g. 'GDPR Art. 17'.")
@click.option("--deadline", type=click.DateTime(), help="When it must be done.")
@click.option("--requester", help="Who asked; stored only as a sha256.")
@json_option
@click.pass_context
def request(ctx: click.Context, collection: str, anchor_ids: tuple[int, ...],
            record_ids: tuple[str, ...], records_file: Path | None, datasets: tuple[str, ...],
            creators: tuple[str, ...], licenses: tuple[str, ...], captions: tuple[str, ...],
            image_file: Path | None, near: bool, basis: str, deadline: datetime | None,
            requester: str | None, as_json: bool) -> None:
    """Record a request to delete the selected pairs of COLLECTION (nothing is deleted yet).

    Example: asif deletion request flickr8k --records-file images.txt --basis "GDPR Art. 17"
    """
    records = list(record_ids)
    for name in _lines(records_file):
        records += [name] if "#" in name else [f"{name}#{i}" for i in range(5)]
    with platform_from(ctx) as platform:
        hashes: tuple[str, ...] = ()
        near_ids: tuple[int, ...] = ()
        if image_file is not None:
            digest, similar = near_duplicates(platform, collection, image_file)
            hashes, near_ids = (digest,), tuple(similar) if near else ()
        selector = DeletionSelector(
            anchor_ids=anchor_ids, source_record_ids=tuple(records), source_datasets=datasets,
            creators=creators, licenses=licenses, caption_contains=captions,
            image_sha256s=hashes, near_duplicate_ids=near_ids)
        request_id = create_request(
            platform, collection, selector, legal_basis=basis,
            deadline=deadline.astimezone() if deadline else None, requester=requester)
        data = preview_request(platform, request_id)
    emit(data, as_json, _preview_text)


def _preview_text(d: dict[str, Any]) -> str:
    lines = [f"deletion request {d['request']} on {d['collection']} ({d['status']}): "
             f"{d['pairs']} pairs",
             f"  by source:  {d['by_source']}", f"  by version: {d['by_version']}",
             f"  ids: {', '.join(d['anchor_ids'][:10])}" + (" ..." if d["pairs"] > 10 else "")]
    for row in d.get("pairs_content", []):
        lines.append(f"    {row['anchor_id']}  {row['image_ref']}  {row['caption']!r}")
    return "\n".join(lines)


@deletion.command()
@click.argument("request_id", type=int)
@click.option("--show-content", is_flag=True, help="Also list captions and image references.")
@json_option
@click.pass_context
def preview(ctx: click.Context, request_id: int, show_content: bool, as_json: bool) -> None:
    """What applying REQUEST_ID would remove: counts by source and version, and ids."""
    with platform_from(ctx) as platform:
        emit(preview_request(platform, request_id, content=show_content), as_json, _preview_text)


@deletion.command()
@click.argument("request_id", type=int)
@json_option
@click.pass_context
def apply(ctx: click.Context, request_id: int, as_json: bool) -> None:
    """Delete, verify, finalize and purge; run it again to finish an interrupted apply.

    Example: asif deletion apply 3
    """
    with platform_from(ctx) as platform:
        receipt = apply_request(platform, request_id)
    emit(receipt, as_json, lambda r: (
        ("already completed earlier; " if r.get("already_completed") else "") +
        f"deletion request {r['request']}: {r['pairs_removed']} pairs removed from "
        f"{r['collection']}; verification {'passed' if r['verification'].get('passed') else 'see receipt'}; "
        f"versions redacted {r['versions_redacted']}"))


@deletion.command()
@click.argument("request_id", type=int)
@json_option
@click.pass_context
def status(ctx: click.Context, request_id: int, as_json: bool) -> None:
    """Where REQUEST_ID stands: status, deadline, tombstones by state."""
    with platform_from(ctx) as platform:
        data = request_status(platform, request_id)
    emit(data, as_json, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))


@deletion.command()
@click.argument("request_id", type=int)
@click.pass_context
def receipt(ctx: click.Context, request_id: int) -> None:
    """Print the receipt of a completed request as one JSON document."""
    with platform_from(ctx) as platform:
        data = request_status(platform, request_id)
        if data["status"] != "completed":
            raise click.ClickException(f"request {request_id} is {data['status']}; "
                                       "run `asif deletion apply` first")
        receipt_data = apply_request(platform, request_id)  # completed: returns the receipt
        receipt_data.pop("already_completed", None)
    emit(receipt_data, True, str)
