"""``asif collection create|list|show``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.platform import (
    DEFAULT_TEMPLATES,
    MAX_HNSW_EF_CONSTRUCT,
    MAX_HNSW_M,
    TEMPLATE_AGGREGATIONS,
)
from asif_platform.provenance import CONSENT_STATUSES, LICENSE_CLASSES
from asif_platform.store import CollectionSchema


F = TypeVar("F", bound=Callable[..., Any])


def policy_options(function: F) -> F:
    """The collection query policy: consent states and license classes to exclude."""
    function = click.option(
        "--exclude-license-class", "exclude_license_classes", multiple=True,
        type=click.Choice(LICENSE_CLASSES),
        help="Exclude pairs of this license class from every query (repeatable).",
    )(function)
    return click.option(
        "--exclude-consent", "exclude_consent", multiple=True,
        type=click.Choice(CONSENT_STATUSES),
        help="Exclude pairs with this consent status from every query (repeatable); "
             "revoked and expired always are.",
    )(function)


def _policy(consent: tuple[str, ...], classes: tuple[str, ...]) -> dict[str, list[str]]:
    return {"exclude_consent": list(consent), "exclude_license_classes": list(classes)}


@cli.group()
def collection() -> None:
    """Create and inspect anchor collections."""


@collection.command()
@click.argument("name")
@click.option("--image-encoder", help="Image encoder id; default $ASIF_IMAGE_ENCODER.")
@click.option("--text-encoder", help="Text encoder id; default $ASIF_TEXT_ENCODER.")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), default=800, show_default=True,
              help="Anchors kept per relative representation.")
@click.option("-p", "--p", "p", type=click.FloatRange(min=0, min_open=True), default=8.0,
              show_default=True, help="Exponent on the clamped similarities.")
@click.option("--template", "templates", multiple=True,
              help=f"Prompt template with '{{}}' for the label; default {DEFAULT_TEMPLATES[0]!r}.")
@click.option("--template-aggregation", type=click.Choice(TEMPLATE_AGGREGATIONS),
              default="mean", show_default=True, help="How several templates combine.")
@click.option("--hnsw/--exact", "hnsw", default=False, show_default=True,
              help="Approximate HNSW search instead of exact search.")
@click.option("--hnsw-ef", type=click.IntRange(min=1), help="HNSW search beam; default max(k, 128).")
@click.option("--hnsw-m", type=click.IntRange(min=4, max=MAX_HNSW_M), default=CollectionSchema.hnsw_m,
              show_default=True,
              help="HNSW graph degree (more: better recall, more memory).")
@click.option("--hnsw-ef-construct", type=click.IntRange(min=4, max=MAX_HNSW_EF_CONSTRUCT),
              default=CollectionSchema.hnsw_ef_construct, show_default=True,
              help="HNSW build beam (more: better recall, slower ingest).")
@click.option("--quantization", type=click.Choice(["int8", "none"]),
              help="int8: int8 copies in RAM, float32 originals on disk for rescoring; "
                   "none (the default): float32 in RAM.")
@click.option("--team", help="Owning team (you must be its editor or owner); default your own.")
@policy_options
@json_option
@click.pass_context
def create(ctx: click.Context, name: str, image_encoder: str | None, text_encoder: str | None,
           k: int, p: float, templates: tuple[str, ...], template_aggregation: str,
           hnsw: bool, hnsw_ef: int | None, hnsw_m: int, hnsw_ef_construct: int,
           quantization: str | None, team: str | None,
           exclude_consent: tuple[str, ...], exclude_license_classes: tuple[str, ...],
           as_json: bool) -> None:
    """Create an empty collection with its encoders and query defaults.

    Example: asif collection create flickr8k -k 800 -p 8
    """
    with platform_from(ctx) as platform:
        info = platform.create_collection(
            name,
            image_encoder=image_encoder,
            text_encoder=text_encoder,
            k=k,
            p=p,
            templates=templates or DEFAULT_TEMPLATES,
            template_aggregation=template_aggregation,
            exact_search=not hnsw,
            hnsw_ef=hnsw_ef,
            hnsw_m=hnsw_m,
            hnsw_ef_construct=hnsw_ef_construct,
            quantization=quantization,
            team=team,
            policy=_policy(exclude_consent, exclude_license_classes),
        )
    emit(info.to_dict(), as_json, lambda d: f"created collection {d['name']}")



@collection.command(name="list")
@json_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List collections with their anchor counts.

    Example: asif collection list --json
    """
    with platform_from(ctx) as platform:
        infos = [info.to_dict() for info in platform.list_collections()]

    def text(rows: list[dict[str, object]]) -> str:
        if not rows:
            return "no collections; create one with `asif collection create NAME`"
        width = max(len(str(r["name"])) for r in rows)
        return "\n".join(
            f"{r['name']:<{width}}  {r['anchors']:>9} anchors  k={r['k']} p={r['p']}"
            for r in rows
        )

    emit(infos, as_json, text)


@collection.command()
@click.argument("name")
@click.option("-k", "--k", "k", type=click.IntRange(min=1), help="New default k.")
@click.option("-p", "--p", "p", type=click.FloatRange(min=0, min_open=True), help="New default p.")
@click.option("--template", "templates", multiple=True, help="New prompt templates.")
@click.option("--template-aggregation", type=click.Choice(TEMPLATE_AGGREGATIONS),
              help="New template aggregation.")
@click.option("--hnsw/--exact", "hnsw", default=None,
              help="Switch to approximate HNSW search, or back to exact search.")
@click.option("--hnsw-ef", type=click.IntRange(min=1), help="New HNSW search beam.")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, k: int | None, p: float | None,
         templates: tuple[str, ...], template_aggregation: str | None, hnsw: bool | None,
         hnsw_ef: int | None, as_json: bool) -> None:
    """Show a collection; with options, change its query defaults first.

    Example: asif collection show flickr8k -k 400 --hnsw --hnsw-ef 1600
    """
    with platform_from(ctx) as platform:
        if (k is not None or p is not None or templates or template_aggregation
                or hnsw is not None or hnsw_ef is not None):
            platform.update_collection_defaults(
                name, k=k, p=p, templates=templates or None,
                template_aggregation=template_aggregation,
                exact_search=None if hnsw is None else not hnsw, hnsw_ef=hnsw_ef,
            )
        info = platform.describe_collection(name).to_dict()
    emit(info, as_json, lambda d: "\n".join(f"{key}: {value}" for key, value in d.items()))


@collection.command()
@click.argument("name")
@policy_options
@click.option("--clear", is_flag=True, help="Remove every exclusion of the policy.")
@json_option
@click.pass_context
def policy(ctx: click.Context, name: str, exclude_consent: tuple[str, ...],
           exclude_license_classes: tuple[str, ...], clear: bool, as_json: bool) -> None:
    """Show NAME's query policy, or replace it; the next query applies a new one, with
    no re-ingest. With no option it only shows the policy.

    Example: asif collection policy flickr8k --exclude-consent unknown
    """
    changes = bool(exclude_consent or exclude_license_classes)
    if clear and changes:
        raise click.UsageError("--clear cannot be combined with --exclude-* options")
    with platform_from(ctx) as platform:
        if clear or changes:
            info = platform.set_policy(name, _policy(exclude_consent, exclude_license_classes))
        else:
            info = platform.describe_collection(name)
    emit(info.to_dict(), as_json, lambda d: f"{d['name']}: policy {d['policy']}")
