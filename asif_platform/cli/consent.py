"""``asif consent revoke|grant``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.consent import PairSelector, change_consent
from asif_platform.provenance import CONSENT_BASES, parse_time

F = TypeVar("F", bound=Callable[..., Any])


def pair_selection(function: F) -> F:
    """Options that select pairs of a collection (any match is selected)."""
    options = [
        click.option("--anchor-id", "anchor_ids", multiple=True, type=int, help="Anchor id."),
        click.option("--record-id", "record_ids", multiple=True,
                     help="Source record id, e.g. 1000268201_693b08cb0e.jpg#0."),
        click.option("--records-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="A file of source record ids or image file names, one per line."),
        click.option("--source-dataset", "source_datasets", multiple=True, help="Source dataset."),
        click.option("--image-sha256", "image_sha256s", multiple=True, help="sha256 of image bytes."),
        click.option("--image-file", "image_files", multiple=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="An image file, matched by the sha256 of its bytes."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def selector_from(anchor_ids: tuple[int, ...], record_ids: tuple[str, ...],
                  records_file: Path | None, source_datasets: tuple[str, ...],
                  image_sha256s: tuple[str, ...], image_files: tuple[Path, ...]) -> PairSelector:
    records = list(record_ids)
    if records_file is not None:
        for line in records_file.read_text().splitlines():
            name = line.strip()
            if name:
                # An image file name selects all five of its captions' records.
                records += [name] if "#" in name else [f"{name}#{i}" for i in range(5)]
    return PairSelector(anchor_ids=anchor_ids, source_record_ids=tuple(records),
                        source_datasets=source_datasets, image_sha256s=image_sha256s,
                        image_files=image_files)


@cli.group()
def consent() -> None:
    """Revoke or grant the consent of pairs; queries see the change at once."""


def _text(d: dict[str, Any]) -> str:
    return f"{d['collection']}: consent of {d['pairs']} pairs set to {d['status']}"


@consent.command()
@click.argument("collection")
@pair_selection
@click.option("--evidence", help="Reference to the revocation request (not its content).")
@json_option
@click.pass_context
def revoke(ctx: click.Context, collection: str, anchor_ids: tuple[int, ...],
           record_ids: tuple[str, ...], records_file: Path | None,
           source_datasets: tuple[str, ...], image_sha256s: tuple[str, ...],
           image_files: tuple[Path, ...], evidence: str | None, as_json: bool) -> None:
    """Revoke consent: the pairs stop contributing to every query at once.

    Example: asif consent revoke flickr8k --record-id 1000268201_693b08cb0e.jpg#0
    """
    selector = selector_from(anchor_ids, record_ids, records_file, source_datasets,
                             image_sha256s, image_files)
    with platform_from(ctx) as platform:
        change = change_consent(platform, collection, selector, "revoked", evidence=evidence)
    emit(change.to_dict(), as_json, _text)


@consent.command()
@click.argument("collection")
@pair_selection
@click.option("--basis", type=click.Choice(CONSENT_BASES), default="explicit",
              show_default=True, help="Basis of the consent.")
@click.option("--expires", help="When the consent expires (ISO date or time, UTC if no zone).")
@click.option("--evidence", help="Reference to the consent evidence (not its content).")
@json_option
@click.pass_context
def grant(ctx: click.Context, collection: str, anchor_ids: tuple[int, ...],
          record_ids: tuple[str, ...], records_file: Path | None,
          source_datasets: tuple[str, ...], image_sha256s: tuple[str, ...],
          image_files: tuple[Path, ...], basis: str, expires: str | None,
          evidence: str | None, as_json: bool) -> None:
    """Record consent as granted (until --expires, if given).

    Example: asif consent grant flickr8k --source-dataset flickr8k --basis license
    """
    selector = selector_from(anchor_ids, record_ids, records_file, source_datasets,
                             image_sha256s, image_files)
    with platform_from(ctx) as platform:
        change = change_consent(platform, collection, selector, "granted", basis=basis,
                                expires_at=parse_time(expires, "--expires"), evidence=evidence)
    emit(change.to_dict(), as_json, _text)
