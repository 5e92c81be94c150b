"""``asif classify``, ``asif eval`` and ``asif explain``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click
import numpy as np

from asif_platform.cli import cli, emit, json_option, platform_from
from asif_platform.encoders.preprocessing import load_image
from asif_platform.platform import TEMPLATE_AGGREGATIONS
from asif_platform.provenance import CONSENT_STATUSES, LICENSE_CLASSES
from asif_platform.query.engine import QueryEngine, QueryOptions
from asif_platform.experiments import record_experiment
from asif_platform.query.evaluation import encode_paths, evaluate, image_files, tune
from asif_platform.query.html import write_explanation_html
from asif_platform.versions import require_ready

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
        click.option("--version", "version",
                     help="Use only the anchors of this frozen version (asif version list)."),
        click.option("--exclude-consent", "exclude_consent", multiple=True,
                     type=click.Choice(CONSENT_STATUSES),
                     help="Also exclude pairs with this consent status (repeatable)."),
        click.option("--exclude-license-class", "exclude_license_classes", multiple=True,
                     type=click.Choice(LICENSE_CLASSES),
                     help="Also exclude pairs of this license class (repeatable)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _options(engine: QueryEngine, k: int | None, p: float | None,
             templates: tuple[str, ...], aggregation: str | None,
             exact: bool | None, version: str | None,
             exclude_consent: tuple[str, ...] = (),
             exclude_license_classes: tuple[str, ...] = ()) -> QueryOptions:
    anchor_filter = None
    if version is not None:
        anchor_filter = require_ready(engine.platform, engine.name, version)
    policy = {"exclude_consent": list(exclude_consent),
              "exclude_license_classes": list(exclude_license_classes)}
    return engine.options(k=k, p=p, templates=templates or None,
                          aggregation=aggregation, exact=exact, anchor_filter=anchor_filter,
                          policy=policy)


def _labels(labels: tuple[str, ...], labels_file: Path | None) -> list[str]:
    found = [label.strip() for label in labels if label.strip()]
    if labels_file is not None:
        found += [line.strip() for line in labels_file.read_text().splitlines() if line.strip()]
    unique = list(dict.fromkeys(found))
    if len(unique) < 2:
        raise click.UsageError(
            "give at least two different labels with --label or --labels-file"
        )
    return unique


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
             exact: bool | None, version: str | None, exclude_consent: tuple[str, ...],
            exclude_license_classes: tuple[str, ...], as_json: bool) -> None:
    """Classify image files (or folders of them) zero-shot among labels.

    Example: asif classify flickr8k cat.jpg -l cat -l dog -l ship
    """
    candidates = _labels(labels, labels_file)
    paths = image_files(list(images))
    with platform_from(ctx) as platform:
        engine = platform.engine(collection)
        options = _options(engine, k, p, templates, template_aggregation, exact, version,
                           exclude_consent, exclude_license_classes)
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
        lines = ["\t".join([r["image"], *(f"{t['label']}\t{t['score']:.4f}" for t in r["top"])])
                 for r in d["predictions"]]
        lines += [f"{path}\tunreadable" for path in d["unreadable"]]
        return "\n".join(lines)

    emit(data, as_json, text)
    if not rows:
        raise click.ClickException(
            f"none of the {len(paths)} images could be read; the lines above name them"
            if paths else "no image files (.jpg, .png, ...) in the given paths"
        )


def _int_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[int]:
    if not value:
        return []
    try:
        values = [int(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if min(values) < 1:
        raise click.BadParameter(f"every k must be a positive integer, got {value!r}")
    return values


def _float_list(_ctx: click.Context, _param: click.Parameter, value: str | None) -> list[float]:
    if not value:
        return []
    try:
        values = [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None
    if min(values) <= 0:
        raise click.BadParameter(f"every p must be a positive number, got {value!r}")
    return values


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
          template_aggregation: str | None, exact: bool | None, version: str | None, exclude_consent: tuple[str, ...],
            exclude_license_classes: tuple[str, ...], as_json: bool) -> None:
    """Zero-shot accuracy on FOLDER, which holds one subfolder of images per class.

    Prints top-1, top-5, per-class accuracy and the confusion matrix; with --ks
    and --ps, one row per setting (images are encoded and searched once).

    Example: asif eval flickr8k cifar10/test --ks 200,800 --ps 1,4,8
    """
    with platform_from(ctx) as platform:
        engine = platform.engine(collection)
        options = _options(engine, k, p, templates, template_aggregation, exact, version,
                           exclude_consent, exclude_license_classes)
        run = evaluate(engine, folder, options, ks=ks, ps=ps, per_class=per_class)
        best = run.best()
        settings = [{"k": r.k, "p": r.p, "top1": r.top1, "top5": r.top5} for r in run.results]
        experiment_id = record_experiment(
            platform, kind="eval", collection_name=collection, version=version,
            options=options, eval_set=folder, eval_set_sha256=run.eval_set_sha256,
            images=run.images, k=best.k, p=best.p, top1=best.top1, top5=best.top5,
            results={"settings": settings, "per_class": best.per_class,
                     "confusion": best.confusion, "labels": run.labels},
            seconds=sum(run.seconds.values()),
        )
    data = {
        "experiment": experiment_id,
        "collection": collection,
        "version": version,
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
        "settings": settings,
        "unreadable": run.unreadable,
        "seconds": {key: round(value, 3) for key, value in run.seconds.items()},
    }

    def text(d: dict[str, Any]) -> str:
        where = f"collection {collection}" + (f", version {version}" if version else "")
        lines = [f"experiment {d['experiment']}: {d['images']} images, "
                 f"{len(d['labels'])} classes, {where}"]
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


@cli.command(name="tune")
@click.argument("collection")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--ks", callback=_int_list, default="100,200,400,800", show_default=True,
              help="Comma-separated k values.")
@click.option("--ps", callback=_float_list, default="1,2,4,8", show_default=True,
              help="Comma-separated p values.")
@click.option("--aggregations", default="mean,max,embedding", show_default=True,
              help="Comma-separated template aggregations (matter with several templates).")
@click.option("--validation-fraction", type=click.FloatRange(0, 1, min_open=True),
              default=0.5, show_default=True, help="Share of each class used to choose.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the split.")
@click.option("--per-class", type=click.IntRange(min=1), help="Use only the first N images per class.")
@click.option("--save", is_flag=True, help="Save the choice as the collection's defaults.")
@query_options
@json_option
@click.pass_context
def tune_(ctx: click.Context, collection: str, folder: Path, ks: list[int], ps: list[float],
          aggregations: str, validation_fraction: float, seed: int, per_class: int | None,
          save: bool, k: int | None, p: float | None, templates: tuple[str, ...],
          template_aggregation: str | None, exact: bool | None, version: str | None,
          exclude_consent: tuple[str, ...], exclude_license_classes: tuple[str, ...],
          as_json: bool) -> None:
    """Choose k, p and template aggregation on a validation split of FOLDER.

    Prints the grid, the choice and its accuracy on the held-out images, and records
    the run as an experiment; --save makes the choice the collection's defaults.

    Example: asif tune flickr8k cifar10/test --per-class 200 --save
    """
    chosen_aggregations = [a.strip() for a in aggregations.split(",") if a.strip()]
    unknown = [a for a in chosen_aggregations if a not in TEMPLATE_AGGREGATIONS]
    if unknown or not chosen_aggregations:
        raise click.BadParameter(f"aggregations must be among {', '.join(TEMPLATE_AGGREGATIONS)}",
                                 param_hint="--aggregations")
    with platform_from(ctx) as platform:
        if save:  # refuse before the work, so no experiment is recorded for nothing
            platform.get_collection(collection, "write")
        engine = platform.engine(collection)
        options = _options(engine, k, p, templates, template_aggregation, exact, version,
                           exclude_consent, exclude_license_classes)
        run = tune(engine, folder, options, ks=ks, ps=ps, aggregations=chosen_aggregations,
                   validation_fraction=validation_fraction, seed=seed, per_class=per_class)
        best, heldout = run.best, run.heldout
        chosen = replace(options, aggregation=best["aggregation"])
        experiment_id = record_experiment(
            platform, kind="tune", collection_name=collection, version=version,
            options=chosen, eval_set=folder, eval_set_sha256=run.eval_set_sha256,
            images=run.heldout_images or run.validation_images, k=best["k"], p=best["p"],
            top1=heldout.top1 if heldout else best["top1"],
            top5=heldout.top5 if heldout else best["top5"],
            results={"grid": run.grid, "best": best, "seed": seed,
                     "validation_fraction": validation_fraction,
                     "validation_images": run.validation_images,
                     "heldout_images": run.heldout_images},
            seconds=sum(run.seconds.values()),
        )
        if save:
            platform.update_collection_defaults(collection, k=best["k"], p=best["p"],
                                                templates=options.templates,
                                                template_aggregation=best["aggregation"])
    data = {
        "experiment": experiment_id,
        "collection": collection,
        "version": version,
        "validation_images": run.validation_images,
        "heldout_images": run.heldout_images,
        "grid": run.grid,
        "best": best,
        "heldout_top1": heldout.top1 if heldout else None,
        "heldout_top5": heldout.top5 if heldout else None,
        "saved": save,
    }

    def text(d: dict[str, Any]) -> str:
        lines = [f"experiment {d['experiment']}: {d['validation_images']} validation images, "
                 f"{d['heldout_images']} held out",
                 " aggregation      k      p   top-1   top-5"]
        lines += [f" {r['aggregation']:<11} {r['k']:>6} {r['p']:>6g} {r['top1']:7.2%} "
                  f"{r['top5']:7.2%}" for r in d["grid"]]
        b = d["best"]
        lines.append(f"best on validation: aggregation={b['aggregation']} k={b['k']} "
                     f"p={b['p']:g} top-1 {b['top1']:.2%}")
        if d["heldout_top1"] is not None:
            lines.append(f"held-out top-1 {d['heldout_top1']:.2%}, top-5 {d['heldout_top5']:.2%}")
        if d["saved"]:
            lines.append(f"saved as the defaults of {collection}")
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
@click.option("--html", "html_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a self-contained page with thumbnails to this file.")
@query_options
@json_option
@click.pass_context
def explain(ctx: click.Context, collection: str, image: Path, label: str,
            others: tuple[str, ...], top: int, html_file: Path | None, k: int | None,
            p: float | None,
            templates: tuple[str, ...], template_aggregation: str | None,
            exact: bool | None, version: str | None, exclude_consent: tuple[str, ...],
            exclude_license_classes: tuple[str, ...], as_json: bool) -> None:
    """Show the anchor pairs that contributed most to IMAGE's score for LABEL.

    Example: asif explain flickr8k dog.jpg dog -l cat
    """
    labels = list(dict.fromkeys([label, *others]))
    with platform_from(ctx) as platform:
        engine = platform.engine(collection)
        options = _options(engine, k, p, templates, template_aggregation, exact, version,
                           exclude_consent, exclude_license_classes)
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

    if html_file is not None:
        if not html_file.resolve().parent.is_dir():
            raise click.BadParameter(f"folder {html_file.parent} does not exist",
                                     param_hint="--html")
        try:
            data["html"] = str(write_explanation_html(data, html_file))
        except OSError as exc:
            raise click.ClickException(
                f"cannot write {html_file}: {exc.strerror}; choose another --html path"
            ) from exc

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
        if "html" in d:
            lines.append(f"page written to {d['html']}")
        return "\n".join(lines)

    emit(data, as_json, text)
