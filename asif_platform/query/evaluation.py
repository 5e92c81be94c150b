"""Zero-shot evaluation on a folder of class subfolders."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from asif_platform.encoders.preprocessing import load_image
from asif_platform.errors import ConfigError, EncoderError, NotFound
from asif_platform.query.engine import QueryEngine, QueryOptions

__all__ = [
    "IMAGE_SUFFIXES",
    "EvalResult",
    "encode_paths",
    "evaluate",
    "image_files",
    "labelled_images",
]

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})


@dataclass
class EvalResult:
    """Accuracy of one (k, p) setting."""

    k: int
    p: float
    top1: float
    top5: float
    per_class: dict[str, float]
    confusion: list[list[int]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EvalRun:
    """Every setting evaluated on one labelled set, plus timings."""

    labels: list[str]
    images: int
    unreadable: list[str]
    results: list[EvalResult]
    eval_set_sha256: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def best(self) -> EvalResult:
        return max(self.results, key=lambda r: r.top1)


def image_files(paths: Sequence[Path]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into image files."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.exists():
            found.append(path)
        else:
            raise NotFound(f"no such image or folder: {path}")
    return found


def labelled_images(
    folder: Path, *, per_class: int | None = None
) -> tuple[list[str], list[Path], np.ndarray]:
    """Class names (sorted subfolder names), image paths and int label per image."""
    if not folder.is_dir():
        raise NotFound(f"no such folder: {folder}")
    labels = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if len(labels) < 2:
        raise ConfigError(
            f"{folder} must contain one subfolder per class (at least two), "
            f"found {len(labels)}"
        )
    paths: list[Path] = []
    targets: list[int] = []
    for index, label in enumerate(labels):
        files = image_files([folder / label])[:per_class]
        paths.extend(files)
        targets.extend([index] * len(files))
    return labels, paths, np.asarray(targets, dtype=np.int64)


def encode_paths(
    engine: QueryEngine, paths: Sequence[Path], *, batch_size: int = 256, progress: bool | None = None
) -> tuple[np.ndarray, list[int], list[str]]:
    """Encode image files in batches; unreadable files are skipped and named.

    Returns:
        (vectors of shape (n_ok, image_dim), indices of the encoded paths, unreadable).
    """
    vectors: list[np.ndarray] = []
    kept: list[int] = []
    unreadable: list[str] = []
    with tqdm(total=len(paths), unit="img", desc="encode images",
              disable=(not progress) if progress is not None else None) as bar:
        for start in range(0, len(paths), batch_size):
            images = []
            for index in range(start, min(start + batch_size, len(paths))):
                try:
                    images.append(load_image(paths[index]))
                except EncoderError:
                    unreadable.append(str(paths[index]))
                    continue
                kept.append(index)
            if images:
                vectors.append(engine.encode_images(images))
            bar.update(min(batch_size, len(paths) - start))
    dim = engine.image_encoder.dim
    matrix = np.concatenate(vectors) if vectors else np.empty((0, dim), np.float32)
    return matrix, kept, unreadable


def evaluate(
    engine: QueryEngine,
    folder: Path,
    options: QueryOptions,
    *,
    ks: Sequence[int] = (),
    ps: Sequence[float] = (),
    per_class: int | None = None,
    progress: bool | None = None,
) -> EvalRun:
    """Top-1/top-5 accuracy, per-class accuracy and confusion for each (k, p).

    Images are encoded and searched once, with the largest k; smaller k and every
    p reuse those results, since top-k results are prefixes of top-K ones.
    """
    ks = list(ks) or [options.k]
    ps = list(ps) or [options.p]
    seconds: dict[str, float] = {}
    labels, paths, targets = labelled_images(folder, per_class=per_class)
    digest = eval_set_digest(folder, paths)

    started = time.perf_counter()
    vectors, kept, unreadable = encode_paths(engine, paths, progress=progress)
    seconds["image_encode"] = time.perf_counter() - started
    targets = targets[kept]

    started = time.perf_counter()
    limit = max(ks)
    text = engine.text_results(labels, options, limit=limit)
    seconds["text_queries"] = time.perf_counter() - started
    started = time.perf_counter()
    image = engine.image_results(vectors, options, limit=limit)
    seconds["image_queries"] = time.perf_counter() - started

    started = time.perf_counter()
    results = []
    for k in ks:
        for p in ps:
            setting = replace(options, k=k, p=p)
            scores = engine.scores(image, text, len(labels), setting)
            results.append(metrics(labels, targets, scores, k, p))
    seconds["scoring"] = time.perf_counter() - started
    logger.info("evaluated %d images on %s with %d settings", len(targets), engine.name, len(results))
    return EvalRun(labels=labels, images=len(targets), unreadable=unreadable,
                   results=results, eval_set_sha256=digest, seconds=seconds)


def metrics(
    labels: list[str], targets: np.ndarray, scores: np.ndarray, k: int, p: float
) -> EvalResult:
    # Ties (e.g. an image sharing no anchor with any label) resolve to the first label.
    ranking = np.argsort(-scores, axis=1, kind="stable")  # (n_images, n_labels)
    predicted = ranking[:, 0]
    top5 = (ranking[:, :5] == targets[:, None]).any(axis=1)
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (targets, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = {
        label: float(confusion[i, i] / totals[i]) if totals[i] else 0.0
        for i, label in enumerate(labels)
    }
    n = max(len(targets), 1)
    return EvalResult(
        k=k,
        p=p,
        top1=float((predicted == targets).sum() / n),
        top5=float(top5.sum() / n),
        per_class=per_class,
        confusion=confusion.tolist(),
    )


@dataclass
class TuneRun:
    """A grid over (aggregation, k, p) scored on a validation split, and the choice
    checked on the held-out rest."""

    labels: list[str]
    validation_images: int
    heldout_images: int
    grid: list[dict[str, Any]]
    best: dict[str, Any]
    heldout: EvalResult | None
    eval_set_sha256: str = ""
    seconds: dict[str, float] = field(default_factory=dict)


def split_per_class(
    targets: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded, stratified validation split and of the rest."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"the validation fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    validation: list[int] = []
    rest: list[int] = []
    for label in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == label))
        cut = max(1, round(fraction * len(members)))
        validation.extend(members[:cut].tolist())
        rest.extend(members[cut:].tolist())
    return np.sort(np.asarray(validation, np.int64)), np.sort(np.asarray(rest, np.int64))


def tune(
    engine: QueryEngine,
    folder: Path,
    options: QueryOptions,
    *,
    ks: Sequence[int],
    ps: Sequence[float],
    aggregations: Sequence[str],
    validation_fraction: float = 0.5,
    seed: int = 0,
    per_class: int | None = None,
    progress: bool | None = None,
) -> TuneRun:
    """Pick (aggregation, k, p) by top-1 on a validation split of a labelled folder.

    Ties go to the earlier grid entry. The chosen setting is then scored on the
    held-out images (none when the fraction is 1), an unbiased estimate of it.
    """
    seconds: dict[str, float] = {}
    labels, paths, targets = labelled_images(folder, per_class=per_class)
    digest = eval_set_digest(folder, paths)
    started = time.perf_counter()
    vectors, kept, _ = encode_paths(engine, paths, progress=progress)
    seconds["image_encode"] = time.perf_counter() - started
    targets = targets[kept]
    validation, heldout = split_per_class(targets, validation_fraction, seed)

    started = time.perf_counter()
    limit = max(ks)
    image = engine.image_results(vectors, options, limit=limit)
    grid: list[dict[str, Any]] = []
    texts = {}
    for aggregation in aggregations:
        setting = replace(options, aggregation=aggregation)
        texts[aggregation] = engine.text_results(labels, setting, limit=limit)
        for k in ks:
            for p in ps:
                chosen = replace(setting, k=k, p=p)
                scores = engine.scores([image[i] for i in validation], texts[aggregation],
                                       len(labels), chosen)
                result = metrics(labels, targets[validation], scores, k, p)
                grid.append({"aggregation": aggregation, "k": k, "p": p,
                             "top1": result.top1, "top5": result.top5})
    best = max(grid, key=lambda row: row["top1"])  # max keeps the first of equals
    result = None
    if len(heldout):
        chosen = replace(options, aggregation=best["aggregation"], k=best["k"], p=best["p"])
        scores = engine.scores([image[i] for i in heldout], texts[best["aggregation"]],
                               len(labels), chosen)
        result = metrics(labels, targets[heldout], scores, best["k"], best["p"])
    seconds["grid"] = time.perf_counter() - started
    return TuneRun(labels=labels, validation_images=len(validation),
                   heldout_images=len(heldout), grid=grid, best=best, heldout=result,
                   eval_set_sha256=digest, seconds=seconds)


def eval_set_digest(folder: Path, paths: Sequence[Path]) -> str:
    """sha256 over each image's path (relative to the folder) and bytes, in order."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
