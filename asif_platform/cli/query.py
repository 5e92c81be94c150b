"""``asif classify``, ``asif eval`` and ``asif explain``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.encoders.preprocessing import load_image
from asif_platform.platform import TEMPLATE_AGGREGATIONS
from asif_platform.query.engine import QueryEngine, QueryOptions
from asif_platform.query.evaluation import encode_paths, evaluate, image_files

F = TypeVar("F", bound=Callable[..., Any])


def query_options(function: F) -> F:
    """The per-call overrides of a collection's query defaults."""
    options = [
        click.option("-k", "--k", "k", type=click.IntRange(min=1),
                     help="Anchors per relative representation; default the collection's."),
        click.option("-p", "--p", "p", type=click.FloatRange(min=0, min_open=True),
                     help="Exponent; default the collection's."),
        click.option("--template", "templates", multiple=True,
                     help="Prompt template with '{}'; default the collection's."),
        click.option("--template-aggregation", type=click.Choice(TEMPLATE_AGGREGATIONS),
                     help="How several templates combine; default the collection's."),
        click.option("--exact/--approximate", "exact", default=None,
                     help="Exact or HNSW search; default the collection's."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _options(engine: QueryEngine, k: int | None, p: float | None,
             templates: tuple[str, ...], aggregation: str | None,
             exact: bool | None) -> QueryOptions:
    return engine.options(k=k, p=p, templates=templates or None,
                          aggregation=aggregation, exact=exact)


def _labels(labels: tuple[str, ...], labels_file: Path | None) -> list[str]:
    found = [label.strip() for label in labels if label.strip()]
    if labels_file is not None:
        found += [line.strip() for line in labels_file.read_text().splitlines() if line.strip()]
    if len(found) < 2:
        raise click.UsageError("give at least two labels with --label or --labels-file")
    return list(dict.fromkeys(found))


@cli.command()
@click.argument("collection")
@click.argument("images", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("-l", "--label", "labels", multiple=True, help="A candidate label (repeatable).")
@click.option("--labels-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A file with one label per line.")
@click.option("--top", type=click.IntRange(min=1), default=1, show_default=True,
              help="Labels reported per image.")
@query_options
@json_option
@click.pass_context
def classify(ctx: click.Context, collection: str, images: tuple[Path, ...],
             labels: tuple[str, ...], labels_file: Path | None, top: int, k: int | None,
             p: float | None, templates: tuple[str, ...], template_aggregation: str | None,
             exact: bool | None, as_json: bool) -> None:
    """Classify image files (or folders of them) zero-shot among labels.

    Example: asif classify flickr8k cat.jpg -l cat -l dog -l ship
    """
    candidates = _labels(labels, labels_file)
    paths = image_files(list(images))
    with platform_from(ctx) as platform:
        engine = platform.engine(collection)
        options = _options(engine, k, p, templates, template_aggregation, exact)
        vectors, kept, unreadable = encode_paths(engine, paths)
        scores = engine.classify_vectors(vectors, candidates, options) if len(kept) else np.empty((0, len(candidates)))
    rows = []
    for row, index in enumerate(kept):
        order = np.argsort(-scores[row], kind="stable")[:top]
        rows.append({
            "image": str(paths[index]),
            "label": candidates[order[0]],
            "score": float(scores[row, order[0]]),
            "top": [{"label": candidates[i], "score": float(scores[row, i])} for i in order],
        })
    data = {"collection": collection, "k": options.k, "p": options.p,
            "predictions": rows, "unreadable": unreadable}

    def text(d: dict[str, Any]) -> str:
        lines = [f"{r['image']}\t{r['label']}\t{r['score']:.4f}" for r in d["predictions"]]
        lines += [f"{path}\tunreadable" for path in d["unreadable"]]
        return "\n".join(lines)

    emit(data, as_json, text)


def _int_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[int]:
    if not value:
        return []
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


def _float_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[float]:
    if not value:
        return []
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


@cli.command(name="eval")
@click.argument("collection")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ks", callback=_int_list, help="Comma-separated k values to sweep, e.g. 200,800.")
@click.option("--ps", callback=_float_list, help="Comma-separated p values to sweep, e.g. 1,4,8.")
@click.option("--per-class", type=click.IntRange(min=1), help="Use only the first N images per class.")
@query_options
@json_option
@click.pass_context
def eval_(ctx: click.Context, collection: str, folder: Path, ks: list[int], ps: list[float],
          per_class: int | None, k: int | None, p: float | None, templates: tuple[str, ...],
          template_aggregation: str | None, exact: bool | None, as_json: bool) -> None:
    """Zero-shot accuracy on FOLDER, which holds one subfolder of images per class.

    Prints top-1, top-5, per-class accuracy and the confusion matrix; with --ks
    and --ps, one row per setting (images are encoded and searched once).

    Example: asif eval flickr8k cifar10/test --ks 200,800 --ps 1,4,8
    """
    with platform_from(ctx) as platform:
        engine = platform.engine(collection)
        options = _options(engine, k, p, templates, template_aggregation, exact)
        run = evaluate(engine, folder, options, ks=ks, ps=ps, per_class=per_class)
    best = run.best()
    data = {
        "collection": collection,
        "folder": str(folder),
        "images": run.images,
        "labels": run.labels,
        "templates": list(options.templates),
        "template_aggregation": options.aggregation,
        "k": best.k,
        "p": best.p,
        "top1": best.top1,
        "top5": best.top5,
        "per_class": best.per_class,
        "confusion": best.confusion,
        "settings": [{"k": r.k, "p": r.p, "top1": r.top1, "top5": r.top5} for r in run.results],
        "unreadable": run.unreadable,
        "seconds": {key: round(value, 3) for key, value in run.seconds.items()},
    }

    def text(d: dict[str, Any]) -> str:
        lines = [f"{d['images']} images, {len(d['labels'])} classes, collection {collection}"]
        lines.append("     k      p   top-1   top-5")
        lines += [f"{s['k']:>6} {s['p']:>6g} {s['top1']:7.2%} {s['top5']:7.2%}" for s in d["settings"]]
        lines.append(f"per-class top-1 at k={d['k']}, p={d['p']:g}:")
        lines += [f"  {label:<12} {acc:7.2%}" for label, acc in d["per_class"].items()]
        lines.append("confusion (rows: true, columns: predicted):")
        lines += ["  " + " ".join(f"{v:5d}" for v in row) for row in d["confusion"]]
        if d["unreadable"]:
            lines.append(f"unreadable images skipped: {len(d['unreadable'])}")
        return "\n".join(lines)

    emit(data, as_json, text)


@cli.command()
@click.argument("collection")
@click.argument("image", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("label")
@click.option("-l", "--label", "others", multiple=True,
              help="Other candidate labels, to show the runner-up too.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Anchor pairs listed per label.")
@query_options
@json_option
@click.pass_context
def explain(ctx: click.Context, collection: str, image: Path, label: str,
            others: tuple[str, ...], top: int, k: int | None, p: float | None,
            templates: tuple[str, ...], template_aggregation: str | None,
            exact: bool | None, as_json: bool) -> None:
    """Show the anchor pairs that contributed most to IMAGE's score for LABEL.

    Example: asif explain flickr8k dog.jpg dog -l cat
    """
    labels = list(dict.fromkeys([label, *others]))
    with platform_from(ctx) as platform:
        engine = platform.engine(collection)
        options = _options(engine, k, p, templates, template_aggregation, exact)
        vector = engine.encode_images([load_image(image)])[0]
        explanations = engine.explain_vector(vector, labels, options, top=top)
    data = {
        "collection": collection,
        "image": str(image),
        "k": options.k,
        "p": options.p,
        "labels": [
            {
                "label": e.label,
                "score": e.score,
                "contributions": [c.__dict__ for c in e.contributions],
            }
            for e in explanations
        ],
    }

    def text(d: dict[str, Any]) -> str:
        lines = [f"{d['image']} (k={d['k']}, p={d['p']:g})"]
        for entry in d["labels"]:
            lines.append(f"label {entry['label']!r}: score {entry['score']:.4f}")
            for c in entry["contributions"]:
                lines.append(
                    f"  {c['share']:6.1%}  anchor {c['anchor_id']}  "
                    f"img {c['image_similarity']:.3f} txt {c['text_similarity']:.3f}  "
                    f"{c['image_ref']}  {c['caption']!r}"
                )
        return "\n".join(lines)

    emit(data, as_json, text)
