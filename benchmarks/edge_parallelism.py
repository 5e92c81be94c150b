"""Can Qdrant Edge searches use more than one core? Two measurements.

    .venv/bin/python benchmarks/edge_parallelism.py [--anchors 100000]

1. Threads: one query batch on one shard, then two batches on two shards from two
   Python threads. Process CPU time / wall time near 1.0 means the searches ran one at
   a time: the binding holds the GIL while it searches.
2. Segments: the same int8 image vectors (m=32, ef_construct=256, as the platform
   builds them) in one indexed segment, and split into two segments that Edge's search
   pool reads in parallel; per-query time and overlap with the exact top-800.

Anchors: the main job's real pairs and synthetic ones made from them, as in
benchmarks/scale.py (needs its cache, benchmarks/results/cache/).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import qdrant_edge as qe

from scale import CACHE, K, anchors_of_size, real_anchors  # type: ignore[import-not-found]

from asif_platform.settings import Settings


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def shard(path: Path, vectors: np.ndarray, parts: int) -> qe.EdgeShard:
    """Image vectors in `parts` indexed segments (one optimize per part)."""
    config = qe.EdgeConfig(
        vectors={"image": qe.EdgeVectorParams(size=vectors.shape[1], distance=qe.Distance.Cosine,
                                              on_disk=True)},
        hnsw_config=qe.HnswIndexConfig(m=32, ef_construct=256, full_scan_threshold=10_000),
        quantization_config=qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99,
                                                       always_ram=True),
        # Without room for one more segment than parts, optimize merges them.
        optimizers=qe.EdgeOptimizersConfig(default_segment_number=parts + 1),
    )
    edge = qe.EdgeShard.create(str(path), config)
    n = len(vectors)
    for part in range(parts):
        for start in range(part * n // parts, (part + 1) * n // parts, 1000):
            stop = min(start + 1000, (part + 1) * n // parts)
            edge.update(qe.UpdateOperation.upsert_points([
                qe.Point(i + 1, {"image": vectors[i].tolist()}, {}) for i in range(start, stop)]))
        edge.optimize()
    return edge


def requests(queries: np.ndarray, ef: int | None, exact: bool = False) -> qe.QueryBatchRequest:
    params = qe.SearchParams(exact=exact, hnsw_ef=ef, quantization=qe.QuantizationSearchParams(
        rescore=True, oversampling=2.0))
    return qe.QueryBatchRequest([
        qe.QueryRequest(limit=K, query=qe.Query.Nearest(q.tolist(), using="image"),
                        params=params, with_payload=False, with_vector=False)
        for q in queries])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="asif-edge-"))
    real_images, real_texts = real_anchors(Settings.from_env(), "flickr8k")
    images, _ = anchors_of_size(real_images, real_texts, args.anchors, work)
    images = np.asarray(images)
    with np.load(CACHE / "cifar10_test.npz") as data:
        queries = data["vectors"][np.random.default_rng(0).choice(
            len(data["vectors"]), args.queries, replace=False)]
    exact_ids = np.argsort(-(queries @ images.T), axis=1)[:, :K] + 1

    one = shard(work / "one", images, 1)
    two = shard(work / "two", images, 2)
    single_copy = shard(work / "copy", images[: len(images) // 4], 1)
    print(f"{args.anchors:,} int8 anchors; segments (with the empty appendable one): "
          f"{one.info().segments_count} and {two.info().segments_count}")

    batch = requests(queries[:50], 1600)
    one.query_batch(batch)
    started, cpu = time.perf_counter(), cpu_seconds()
    one.query_batch(batch)
    wall = time.perf_counter() - started
    print(f"one batch on one segment: CPU/wall {(cpu_seconds() - cpu) / wall:.2f}")
    started, cpu = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda edge: edge.query_batch(batch), [one, single_copy]))
    wall = time.perf_counter() - started
    print(f"two one-segment shards from two threads: CPU/wall "
          f"{(cpu_seconds() - cpu) / wall:.2f}")

    for ef in (1600, 3200):
        for name, edge in (("one segment", one), ("two segments", two)):
            started, cpu = time.perf_counter(), cpu_seconds()
            hits = edge.query_batch(requests(queries, ef))
            wall = time.perf_counter() - started
            overlap = np.mean([len(np.intersect1d([h.id for h in found], expected)) / K
                               for found, expected in zip(hits, exact_ids, strict=True)])
            print(f"ef {ef} {name:>12}: {wall / len(queries) * 1000:5.1f} ms/query, "
                  f"CPU/wall {(cpu_seconds() - cpu) / wall:.2f}, overlap {overlap:.2%}")
    for edge in (one, two, single_copy):
        edge.close()
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
