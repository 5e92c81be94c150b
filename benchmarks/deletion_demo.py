"""Compliance deletion on real data: remove every pair of 50 named Flickr8k images.

    ASIF_HOME=... .venv/bin/python benchmarks/deletion_demo.py [--per-class 100]

Picks the 50 Flickr8k images most cited when explaining CIFAR-10 test images, files
a deletion request for their pairs by source record id (5 captions each), applies it,
and shows: the receipt, `explain` of a query image that cited them before and after,
and CIFAR-10 top-1 (k=800, p=1) before and after. THIS DELETES PAIRS for good in the
collection it is pointed at: run it on a copy of the main job's data directory.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from asif_platform.catalog import Anchor
from asif_platform.deletion import DeletionSelector, apply_request, create_request
from asif_platform.platform import Platform
from asif_platform.query.evaluation import encode_paths, labelled_images, metrics
from asif_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="flickr8k")
    parser.add_argument("--per-class", type=int, default=None, help="CIFAR-10 test images per class.")
    args = parser.parse_args()

    platform = Platform(Settings.from_env())
    engine = platform.engine(args.collection)
    options = engine.options(k=800, p=1.0)
    labels, paths, targets = labelled_images(CIFAR, per_class=args.per_class)
    vectors, kept, _ = encode_paths(engine, paths)
    targets = targets[kept]

    def top1() -> float:
        image = engine.image_results(vectors, options)
        text = engine.text_results(labels, options)
        return metrics(labels, targets, engine.scores(image, text, len(labels), options),
                       options.k, options.p).top1

    before_top1 = top1()
    # The images most cited by explanations of the first 100 queries' predictions.
    cited: Counter[str] = Counter()
    explained = {}
    for index in range(0, len(vectors), max(1, len(vectors) // 100)):
        top = engine.explain_vector(vectors[index], labels, options, top=50)
        best = max(top, key=lambda e: e.score)
        explained[index] = best
        cited.update({c.image_ref for c in best.contributions})
    names = [Path(ref).name for ref, _ in cited.most_common(50)]
    records = tuple(f"{name}#{i}" for name in names for i in range(5))
    query = next(i for i, e in explained.items()
                 if any(Path(c.image_ref).name in names for c in e.contributions))

    request_id = create_request(platform, args.collection,
                                DeletionSelector(source_record_ids=records),
                                legal_basis="demo: erasure request for 50 images")
    receipt = apply_request(platform, request_id)
    after_top1 = top1()
    after = max(engine.explain_vector(vectors[query], labels, options, top=50),
                key=lambda e: e.score)
    with platform.catalog.session() as session:
        left = session.scalar(select(Anchor.id).where(Anchor.source_record_id.in_(records)))
    platform.close()

    def show(explanation) -> list[str]:  # type: ignore[no-untyped-def]
        return [f"  {c.share:6.1%}  {Path(c.image_ref).name:<28} "
                f"{'DELETED ' if Path(c.image_ref).name in names else ''}{c.caption[:60]!r}"
                for c in explanation.contributions[:8]]

    print(f"query {paths[kept[query]]} (true {labels[targets[query]]})")
    print(f"before: predicted {explained[query].label!r}, score {explained[query].score:.4f}")
    print("\n".join(show(explained[query])))
    print(f"after:  predicted {after.label!r}, score {after.score:.4f}")
    print("\n".join(show(after)))
    cites_deleted = any(Path(c.image_ref).name in names for c in after.contributions)
    print(f"explanation after cites a deleted image: {cites_deleted}; catalog rows left: {left}")
    print(f"CIFAR-10 top-1 ({len(kept)} images, k=800, p=1): before {before_top1:.2%}, "
          f"after {after_top1:.2%}")
    summary = {k: v for k, v in receipt.items() if k != "removed_ids"}
    summary["removed_ids"] = f"{len(receipt['removed_ids'])} ids"
    print("receipt:", json.dumps(summary, indent=2))
    out = ROOT / "benchmarks" / "results" / "deletion_demo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"receipt": receipt, "top1_before": before_top1,
                               "top1_after": after_top1, "images": names,
                               "cites_deleted_after": cites_deleted}, indent=2) + "\n")


if __name__ == "__main__":
    main()
