"""What one frozen version costs: bytes on disk per member, and query time.

    ASIF_HOME=<a copy of a data directory> .venv/bin/python benchmarks/version_cost.py

Compacts the embedded shard (so only live data is measured), freezes one more version
over every anchor, compacts again and compares sizes; then times the same image-side
searches (200 CIFAR-10 test images, k=800, exact) with and without the version
filter. Modifies the data directory it is given: point it at a copy.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from asif_platform.platform import Platform
from asif_platform.query.evaluation import encode_paths, labelled_images
from asif_platform.settings import Settings
from asif_platform.versions import create_version, require_ready

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "cifar10" / "test"


def shard_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="flickr8k")
    parser.add_argument("--version", default="cost-probe")
    args = parser.parse_args()

    platform = Platform(Settings.from_env())
    shard = platform.settings.qdrant_path / args.collection
    platform.store.compact(args.collection)
    before = shard_bytes(shard)
    info = create_version(platform, args.collection, args.version)
    platform.store.compact(args.collection)
    after = shard_bytes(shard)

    engine = platform.engine(args.collection)
    _, paths, _ = labelled_images(CIFAR, per_class=20)
    vectors, _, _ = encode_paths(engine, paths)
    timings = {}
    for name, anchor_filter in (("no version", None),
                                (args.version, require_ready(platform, args.collection,
                                                             args.version))):
        options = engine.options(k=800, exact=True, anchor_filter=anchor_filter)
        engine.image_results(vectors[:10], options)  # warm-up
        started = time.perf_counter()
        for _ in range(3):
            engine.image_results(vectors, options)
        timings[name] = (time.perf_counter() - started) / 3 / len(vectors) * 1000
    platform.close()
    print(f"{info.anchors} members: shard {before:,} -> {after:,} bytes after compaction, "
          f"{(after - before) / info.anchors:.1f} bytes per member")
    for name, ms in timings.items():
        print(f"image-side search, {name}: {ms:.2f} ms per query")


if __name__ == "__main__":
    main()
