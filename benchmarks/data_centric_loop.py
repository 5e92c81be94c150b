"""The data-centric loop on real data: add in-domain pairs, freeze a version, measure.

Starting from the Flickr8k train+dev anchors, add CIFAR-10 training pairs captioned
"a photo of a {class}." (first 10 per class, then all 100 per class from
../shared/data/cifar10/train-subset), freeze a version after each update, and
evaluate every version on the CIFAR-10 test set. Reports top-1 per version and p,
the wall time of each update (ingest + version), and what a version costs: bytes on
disk and query time with the version filter against no filter.

    .venv/bin/python benchmarks/data_centric_loop.py [--home asif-loop-data] [--per-class N]

Uses its own data directory (default ./asif-loop-data), so the main job's collection
is left as it is. Writes benchmarks/results/data_centric_loop.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.query.evaluation import encode_paths, labelled_images, metrics
from asif_platform.settings import Settings
from asif_platform.versions import create_version, list_versions, require_ready

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
FLICKR = DATA / "flickr8k"
CIFAR = DATA / "cifar10"


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def cifar_pairs_csv(folder: Path, per_class: int, out: Path) -> Path:
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "caption", "id"])
        for label_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
            for image in sorted(label_dir.glob("*.jpg"))[:per_class]:
                writer.writerow([image, f"a photo of a {label_dir.name}.",
                                 f"{label_dir.name}/{image.name}"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("asif-loop-data"))
    parser.add_argument("--per-class", type=int, default=None,
                        help="CIFAR-10 test images per class (default all 1,000).")
    parser.add_argument("--k", type=int, default=800)
    parser.add_argument("--ps", default="1,4,8")
    args = parser.parse_args()
    ps = [float(v) for v in args.ps.split(",")]

    platform = Platform(Settings(home=args.home))
    name = "loop"
    if name not in {c.name for c in platform.list_collections()}:
        platform.create_collection(name, k=args.k)
    updates = []

    started = time.perf_counter()
    ingest(platform, name, read_pairs(FLICKR / "Flickr8k.token.txt", split_files=[
        FLICKR / "Flickr_8k.trainImages.txt", FLICKR / "Flickr_8k.devImages.txt"]))
    qdrant = platform.settings.qdrant_path
    before_version = disk_bytes(qdrant)
    versions = {v.name for v in list_versions(platform, name)}
    if "flickr" not in versions:
        create_version(platform, name, "flickr")
    updates.append({"version": "flickr", "note": "initial Flickr8k ingest",
                    "seconds": round(time.perf_counter() - started, 1)})
    version_bytes = disk_bytes(qdrant) - before_version

    for per_class, version in ((10, "cifar10x10"), (100, "cifar10x100")):
        started = time.perf_counter()
        table = cifar_pairs_csv(CIFAR / "train-subset", per_class,
                                args.home / f"cifar-train-{per_class}.csv")
        report = ingest(platform, name, read_pairs(table, id_column="id",
                                                   source_dataset="cifar10-train"))
        if version not in versions:
            create_version(platform, name, version)
        updates.append({"version": version, "pairs_added": report.pairs_added,
                        "seconds": round(time.perf_counter() - started, 2)})

    engine = platform.engine(name)
    labels, paths, targets = labelled_images(CIFAR / "test", per_class=args.per_class)
    started = time.perf_counter()
    vectors, kept, _ = encode_paths(engine, paths)
    encode_seconds = time.perf_counter() - started
    targets = targets[kept]

    rows = []
    for version in ("flickr", "cifar10x10", "cifar10x100", None):
        options = engine.options(
            k=args.k, exact=True,
            anchor_filter=require_ready(platform, name, version) if version else None)
        started = time.perf_counter()
        text = engine.text_results(labels, options)
        image = engine.image_results(vectors, options)
        search_seconds = time.perf_counter() - started
        for p in ps:
            options_p = engine.options(k=args.k, p=p, exact=True,
                                       anchor_filter=options.anchor_filter)
            result = metrics(labels, targets, engine.scores(image, text, len(labels), options_p),
                             args.k, p)
            rows.append({"version": version or "(no filter)", "p": p, "top1": result.top1,
                         "top5": result.top5, "search_seconds": round(search_seconds, 2)})
    platform.close()

    print(f"CIFAR-10 test: {len(kept)} images (encoded once in {encode_seconds:.0f}s), k={args.k}")
    print(f"{'version':>12} {'p':>4} {'top-1':>7} {'top-5':>7} {'search s':>9}")
    for row in rows:
        print(f"{row['version']:>12} {row['p']:>4g} {row['top1']:>7.1%} {row['top5']:>7.1%} "
              f"{row['search_seconds']:>9.2f}")
    print("updates (ingest + freeze version):")
    for update in updates:
        print(f"  {update}")
    print(f"version payload cost on disk: {version_bytes} bytes for 34,991 members")
    out = ROOT / "benchmarks" / "results" / "data_centric_loop.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"images": len(kept), "k": args.k, "results": rows,
                               "updates": updates, "version_payload_bytes": version_bytes,
                               "image_encode_seconds": round(encode_seconds, 1)},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
