"""Consent revocation on real data: revoke the 500 Flickr8k images most cited by
explanations of CIFAR-10 test images, then explain the same images again.

    ASIF_HOME=... .venv/bin/python benchmarks/policy_demo.py [--queries 300]

Needs the main job's collection (flickr8k). It changes consent in that collection and
restores it at the end (back to "unknown", their status at ingest) unless --keep.
Prints citations of the revoked pairs before and after, and top-1 on the queries.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import select

from asif_platform.catalog import Anchor
from asif_platform.consent import PairSelector, change_consent
from asif_platform.platform import Platform
from asif_platform.query.evaluation import encode_paths, labelled_images
from asif_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "test"


def explain_all(engine, vectors, labels, options):  # type: ignore[no-untyped-def]
    """Every contributing anchor of every label, per query image, and the predictions."""
    cited: list[set[int]] = []
    predicted = []
    for vector in vectors:
        explanations = engine.explain_vector(vector, labels, options, top=options.k)
        cited.append({c.anchor_id for e in explanations for c in e.contributions})
        predicted.append(int(np.argmax([e.score for e in explanations])))
    return cited, np.asarray(predicted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="flickr8k")
    parser.add_argument("--queries", type=int, default=300, help="CIFAR-10 test images in all.")
    parser.add_argument("--images", type=int, default=500, help="Flickr8k images to revoke.")
    parser.add_argument("--keep", action="store_true", help="Leave the pairs revoked.")
    args = parser.parse_args()

    platform = Platform(Settings.from_env())
    engine = platform.engine(args.collection)
    options = engine.options(k=800, p=1.0)
    labels, paths, targets = labelled_images(CIFAR, per_class=args.queries // 10)
    vectors, kept, _ = encode_paths(engine, paths)
    targets = targets[kept]

    before, predicted_before = explain_all(engine, vectors, labels, options)
    with platform.catalog.session() as session:
        image_of = dict(session.execute(select(Anchor.id, Anchor.image_sha256).where(
            Anchor.id.in_(set().union(*before)))).all())
    counts = Counter(image_of[a] for cited in before for a in cited)
    revoked_images = [image for image, _ in counts.most_common(args.images)]

    started = time.perf_counter()
    change = change_consent(platform, args.collection,
                            PairSelector(image_sha256s=tuple(revoked_images)), "revoked",
                            evidence="policy-demo")
    revoke_seconds = time.perf_counter() - started
    with platform.catalog.session() as session:
        revoked_ids = set(session.scalars(select(Anchor.id).where(
            Anchor.image_sha256.in_(revoked_images))))

    after, predicted_after = explain_all(engine, vectors, labels, options)
    result = {
        "queries": len(kept),
        "revoked_images": len(revoked_images),
        "revoked_pairs": change.pairs,
        "revoke_seconds": round(revoke_seconds, 2),
        "explanations_citing_revoked_before": sum(bool(c & revoked_ids) for c in before),
        "citations_of_revoked_before": sum(len(c & revoked_ids) for c in before),
        "explanations_citing_revoked_after": sum(bool(c & revoked_ids) for c in after),
        "citations_of_revoked_after": sum(len(c & revoked_ids) for c in after),
        "top1_before": float((predicted_before == targets).mean()),
        "top1_after": float((predicted_after == targets).mean()),
    }
    if not args.keep:
        change_consent(platform, args.collection,
                       PairSelector(image_sha256s=tuple(revoked_images)), "unknown",
                       evidence="policy-demo restore")
    platform.close()
    for key, value in result.items():
        print(f"{key:<38} {value}")
    out = ROOT / "benchmarks" / "results" / "policy_demo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    assert result["citations_of_revoked_after"] == 0, "a revoked pair was cited"


if __name__ == "__main__":
    main()
