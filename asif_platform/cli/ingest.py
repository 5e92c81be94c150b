"""``asif ingest``: add image-caption pairs to a collection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.ingest.pipeline import ingest as run_ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.provenance import CONSENT_BASES, CONSENT_STATUSES, Provenance

FORMATS = ("flickr", "coco", "csv", "jsonl", "folder")


def _summary(report: dict[str, Any]) -> str:
    lines = [
        f"collection {report['collection']}: ingest run {report['run_id']}",
        f"  records read:      {report['records_read']}",
        f"  pairs added:       {report['pairs_added']}",
        f"  already present:   {report['already_present']}",
        f"  deleted earlier:   {report['previously_deleted']} (refused: removed by a deletion request)",
        f"  duplicate pairs:   {report['duplicate_pairs']}",
        f"  images encoded:    {report['images_encoded']}",
    ]
    for key in ("missing_images", "corrupt_images", "empty_captions", "oversized_captions",
                "invalid_provenance", "unstorable_text"):
        problem = report[key]
        if problem["count"]:
            examples = ", ".join(problem["examples"])
            lines.append(f"  skipped, {key.replace('_', ' ')}: {problem['count']} (e.g. {examples})")
    if report["pairs_added"] == 0 and report["already_present"]:
        lines.append("  nothing new: every readable pair is already in the collection")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in report["seconds"].items())
    lines.append(f"  time: {timing}")
    return "\n".join(lines)


@cli.command()
@click.argument("collection")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "format_", type=click.Choice(FORMATS),
              help="Input format; default guessed from SOURCE.")
@click.option("--split", "split_files", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Flickr split file naming the images to include (repeatable).")
@click.option("--image-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Image folder (Flickr, COCO); default beside SOURCE.")
@click.option("--image-column", default="image", show_default=True, help="CSV/JSONL image column.")
@click.option("--caption-column", default="caption", show_default=True,
              help="CSV/JSONL caption column.")
@click.option("--id-column", help="CSV/JSONL record id column; default FILE:ROW.")
@click.option("--source-dataset", help="Dataset name recorded per pair; default from SOURCE.")
@click.option("--source-version", help="Version of the source dataset.")
@click.option("--source-url", help="Where the source dataset is published.")
@click.option("--license", "license_", help="SPDX license id or expression of the pairs.")
@click.option("--creator", help="Creator of the pairs.")
@click.option("--attribution", help="Attribution text the license asks for.")
@click.option("--consent", "consent_status", type=click.Choice(CONSENT_STATUSES),
              default="unknown", show_default=True, help="Consent status of the pairs.")
@click.option("--consent-basis", type=click.Choice(CONSENT_BASES), help="Basis of the consent.")
@click.option("--consent-expires", help="When consent expires (ISO date or time, UTC if no zone).")
@click.option("--consent-evidence", help="Reference to the consent evidence (not the evidence).")
@click.option("--batch-images", type=click.IntRange(min=1), default=256, show_default=True,
              help="Images encoded and written per batch.")
@json_option
@click.pass_context
def ingest(ctx: click.Context, collection: str, source: Path, format_: str | None,
           split_files: tuple[Path, ...], image_dir: Path | None, image_column: str,
           caption_column: str, id_column: str | None, source_dataset: str | None,
           source_version: str | None, source_url: str | None, license_: str | None,
           creator: str | None, attribution: str | None, consent_status: str,
           consent_basis: str | None, consent_expires: str | None,
           consent_evidence: str | None, batch_images: int, as_json: bool) -> None:
    """Add the image-caption pairs in SOURCE to COLLECTION.

    Re-running the same command adds nothing new; after an interruption it
    completes the ingest. Missing or corrupt images and empty captions are counted
    and skipped. Provenance and consent options apply to every pair; CSV/JSONL
    columns of the same names (license, creator, consent_status, ...) override them
    per record.

    Example: asif ingest flickr8k Flickr8k.token.txt --split Flickr_8k.trainImages.txt
    """
    options: dict[str, Any] = {}
    resolved_format = format_
    if split_files:
        options["split_files"] = list(split_files)
    if image_dir is not None:
        options["image_dir"] = image_dir
    if source_dataset:
        options["source_dataset"] = source_dataset
    if resolved_format in ("csv", "jsonl") or source.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        options.update(image_column=image_column, caption_column=caption_column,
                       id_column=id_column)
    with platform_from(ctx) as platform:
        provenance = Provenance(
            source_version=source_version, source_url=source_url, license=license_,
            creator=creator, attribution=attribution, consent_status=consent_status,
            consent_basis=consent_basis, consent_expires_at=consent_expires,
            consent_evidence=consent_evidence,
        )
        records = read_pairs(source, format=resolved_format, **options)
        report = run_ingest(platform, collection, records, source=str(source.resolve()),
                            provenance=provenance,
                            images_per_batch=batch_images)
    emit(report.to_dict(), as_json, _summary)
