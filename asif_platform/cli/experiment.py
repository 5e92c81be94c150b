"""``asif experiment list|show|compare``."""

from __future__ import annotations

from typing import Any

import click

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.experiments import get_experiments, list_experiments


@cli.group()
def experiment() -> None:
    """The record of every `asif eval` and `asif tune` run."""


def _row(d: dict[str, Any]) -> str:
    where = d["collection"] + (f"@{d['version']}" if d["version"] else "")
    return (f"{d['id']:>4} {d['kind']:<5} {where:<24} {d['images']:>6} img "
            f"k={d['k']:<5} p={d['p']:<4g} {d['template_aggregation']:<9} "
            f"top-1 {d['top1']:7.2%} top-5 {d['top5']:7.2%}  {d['created_at'][:19]}")


@experiment.command(name="list")
@click.option("--collection", help="Only this collection's experiments.")
@json_option
@click.pass_context
def list_(ctx: click.Context, collection: str | None, as_json: bool) -> None:
    """List recorded experiments, oldest first."""
    with platform_from(ctx) as platform:
        rows = [e.to_dict(full=False) for e in list_experiments(platform, collection)]
    emit(rows, as_json, lambda rs: "\n".join(map(_row, rs)) or "no experiments yet")


@experiment.command()
@click.argument("experiment_id", type=int)
@json_option
@click.pass_context
def show(ctx: click.Context, experiment_id: int, as_json: bool) -> None:
    """Show one experiment in full."""
    with platform_from(ctx) as platform:
        data = get_experiments(platform, [experiment_id])[0].to_dict()
    emit(data, as_json, lambda d: "\n".join(f"{k}: {v}" for k, v in d.items()))


COMPARED = ("kind", "collection", "version", "eval_set", "eval_set_sha256", "images",
            "image_fingerprint", "text_fingerprint", "templates", "template_aggregation",
            "k", "p", "top1", "top5", "seconds")


@experiment.command()
@click.argument("experiment_ids", type=int, nargs=-1, required=True)
@json_option
@click.pass_context
def compare(ctx: click.Context, experiment_ids: tuple[int, ...], as_json: bool) -> None:
    """Show experiments side by side, one column each; differing rows are marked.

    Example: asif experiment compare 3 4
    """
    with platform_from(ctx) as platform:
        infos = [e.to_dict() for e in get_experiments(platform, list(experiment_ids))]
    data = {"experiments": list(experiment_ids),
            "fields": {key: [info[key] for info in infos] for key in COMPARED}}

    def text(d: dict[str, Any]) -> str:
        lines = ["  " + f"{'experiment':<22}" + "".join(f"{i:>24}" for i in d["experiments"])]
        for key, values in d["fields"].items():
            mark = "*" if len({str(v) for v in values}) > 1 else " "
            cells = "".join(f"{_cell(key, v):>24}" for v in values)
            lines.append(f"{mark} {key:<22}{cells}")
        return "\n".join(lines)

    emit(data, as_json, text)


def _cell(key: str, value: Any) -> str:
    if key in ("top1", "top5"):
        return f"{value:.2%}"
    text = str(value)
    return text if len(text) <= 22 else text[:10] + "…" + text[-11:]
