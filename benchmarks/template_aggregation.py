"""Does a label score by the mean over its prompt templates, the best one, or the
mean prompt embedding? Measured on CIFAR-10 test images with the main job's collection.

    .venv/bin/python benchmarks/template_aggregation.py [--per-class 200]

Prints top-1 per aggregation and p, and writes benchmarks/results/template_aggregation.json.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from asif_platform.platform import Platform
from asif_platform.query.evaluation import metrics, encode_paths, labelled_images
from asif_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "test"
TEMPLATES = ["a photo of a {}.", "a blurry photo of a {}.", "a photo of the {}.",
             "a low resolution photo of a {}.", "a close-up photo of a {}.",
             "a picture of a {}."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="flickr8k")
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--k", type=int, default=800)
    parser.add_argument("--ps", default="1,4,8")
    args = parser.parse_args()

    platform = Platform(Settings.from_env())
    engine = platform.engine(args.collection)
    labels, paths, targets = labelled_images(CIFAR, per_class=args.per_class)
    started = time.perf_counter()
    vectors, kept, _ = encode_paths(engine, paths)
    print(f"encoded {len(kept)} CIFAR-10 test images in {time.perf_counter() - started:.0f}s")
    targets = targets[kept]
    base = engine.options(k=args.k)
    image = engine.image_results(vectors, base)

    rows = []
    variants = [("single", ["a photo of a {}."], "mean")] + [
        (aggregation, TEMPLATES, aggregation) for aggregation in ("mean", "max", "embedding")]
    for name, templates, aggregation in variants:
        options = replace(base, templates=tuple(templates), aggregation=aggregation)
        text = engine.text_results(labels, options)
        for p in [float(v) for v in args.ps.split(",")]:
            scores = engine.scores(image, text, len(labels), replace(options, p=p))
            result = metrics(labels, targets, scores, args.k, p)
            rows.append({"variant": name, "templates": len(templates), "k": args.k, "p": p,
                         "top1": result.top1, "top5": result.top5})
    platform.close()

    print(f"{'variant':>10} {'templates':>9} {'p':>4} {'top-1':>7} {'top-5':>7}")
    for row in rows:
        print(f"{row['variant']:>10} {row['templates']:>9} {row['p']:>4g} "
              f"{row['top1']:>7.1%} {row['top5']:>7.1%}")
    out = ROOT / "benchmarks" / "results" / "template_aggregation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"images": len(kept), "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
