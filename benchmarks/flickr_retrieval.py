"""Flickr8k test split, image -> caption retrieval over its 5,000 captions.

Uses the collection the main job built (default ``flickr8k`` in $ASIF_HOME): each of
the 1,000 test images ranks all 5,000 test captions by ASIF score; R@1 and R@5 count
the images whose own caption is among the first 1 or 5.

    .venv/bin/python benchmarks/flickr_retrieval.py [--collection flickr8k] [--ps 1,4,8]

Prints a table and writes benchmarks/results/flickr_retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from asif_platform.encoders import load_image
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FLICKR = ROOT.parent / "shared" / "data" / "flickr8k"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="flickr8k")
    parser.add_argument("--k", type=int, default=800)
    parser.add_argument("--ps", default="1,4,8")
    args = parser.parse_args()

    records = read_pairs(FLICKR / "Flickr8k.token.txt",
                         split_files=[FLICKR / "Flickr_8k.testImages.txt"])
    images = sorted({record.image for record in records})
    captions = [record.caption for record in records]
    owner = np.array([images.index(record.image) for record in records])  # caption -> image

    platform = Platform(Settings.from_env())
    engine = platform.engine(args.collection)
    started = time.perf_counter()
    vectors = engine.encode_images([load_image(path) for path in images])
    encode_seconds = time.perf_counter() - started

    rows = []
    for p in [float(v) for v in args.ps.split(",")]:
        options = engine.options(k=args.k, p=p, templates=["{}"], aggregation="mean")
        started = time.perf_counter()
        scores = engine.classify_vectors(vectors, captions, options)  # (images, captions)
        query_seconds = time.perf_counter() - started
        ranked = np.argsort(-scores, axis=1, kind="stable")[:, :5]
        hits = owner[ranked] == np.arange(len(images))[:, None]
        rows.append({"k": args.k, "p": p, "r_at_1": float(hits[:, 0].mean()),
                     "r_at_5": float(hits.any(axis=1).mean()),
                     "query_seconds": round(query_seconds, 2)})
    platform.close()

    print(f"Flickr8k test: {len(images)} images, {len(captions)} captions, "
          f"collection {args.collection}; image encoding {encode_seconds:.1f}s")
    print(f"{'k':>5} {'p':>4} {'R@1':>7} {'R@5':>7} {'query s':>8}")
    for row in rows:
        print(f"{row['k']:>5} {row['p']:>4g} {row['r_at_1']:>7.1%} {row['r_at_5']:>7.1%} "
              f"{row['query_seconds']:>8.2f}")
    out = ROOT / "benchmarks" / "results" / "flickr_retrieval.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"images": len(images), "captions": len(captions),
                               "image_encode_seconds": round(encode_seconds, 2),
                               "results": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
