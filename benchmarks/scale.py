"""Query cost at scale: the platform's query path against a dense reference.

    .venv/bin/python benchmarks/scale.py [--float32-sizes real,100000]
        [--int8-sizes real,100000,1000000,1600000] [--candidates 10,100,1000]
        [--queries 200] [--efs 800,1600,3200]

Needs the main job's collection (``$ASIF_HOME``, default ./asif-data, collection
flickr8k): its 34,991 real anchor pairs are exported once, and CIFAR-10 test images
encoded once, into benchmarks/results/cache/. For each N, anchors are the real pairs
plus synthetic ones made from them (a real pair plus Gaussian noise, scaled so that a
synthetic vector is as close to its seed as real anchors are to their nearest
neighbour, so the collection is clustered the way real embeddings are).

For each N it builds an embedded Qdrant (Edge) collection through the platform
(HNSW, k=800, p=1) and measures, in the same run:
  - ingestion: upsert pairs/s and HNSW build time;
  - the platform's classify (QueryEngine.classify_vectors; image vectors given, so
    image encoding is excluded) for C candidate labels: per-image latency p50/p95 and
    batched throughput, with the text side cached as in steady use, plus the cold
    label set-up (prompt encoding + text-side search);
  - a dense reference that follows the official ASIF implementation: full
    similarity matrix (chunked to a memory budget), top-k, power, L2 normalisation,
    sparse product; its per-image time and the ratio platform / reference;
  - the price of HNSW: overlap of the image side's top-k with the exact top-k, and
    agreement of predicted labels with exact ASIF (the dense reference);
  - memory: bytes per pair on disk and resident in RAM (float32; int8 at
    --int8-sizes), and for int8 the CIFAR-10 top-1 on the real collection.
Prints tables and writes benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from asif_platform.platform import Platform
from asif_platform.query.cache import clear_text_cache
from asif_platform.query.engine import QueryOptions
from asif_platform.query.evaluation import encode_paths, labelled_images
from asif_platform.settings import Settings
from asif_platform.store import CollectionSchema, ServerAnchorStore

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
CACHE = RESULTS / "cache"
K, P = 800, 1.0
TEMPLATES = ("a photo of a {}.",)
PAYLOAD = {"consent_status": "granted", "license_class": "commercial"}
STOPWORDS = set("""a an the and of in on at to is are with for from by his her its their
this that while into two three four one some other as it he she they them there near
its out up down over under very small large big little""".split())


# Data


def real_anchors(settings: Settings, collection: str) -> tuple[np.ndarray, np.ndarray]:
    """The main job's anchor vectors: (N, 1280) images and (N, 384) captions."""
    cached = CACHE / f"{collection}_anchors.npz"
    if cached.is_file():
        with np.load(cached) as data:
            return data["images"], data["texts"]
    platform = Platform(settings)
    ids = np.sort(platform.store.list_ids(collection))
    images, texts = [], []
    for start in range(0, len(ids), 2000):
        chunk = ids[start : start + 2000].tolist()
        points = platform.store.retrieve(collection, chunk, with_vectors=True)
        images.append(np.stack([points[i]["image"] for i in chunk]))
        texts.append(np.stack([points[i]["text"] for i in chunk]))
    platform.close()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, images=np.concatenate(images), texts=np.concatenate(texts))
    return real_anchors(settings, collection)


def cifar_queries(engine: Any) -> tuple[list[str], np.ndarray, np.ndarray, float]:
    """CIFAR-10 test: labels, (10000, 1280) image vectors, targets, encode images/s."""
    cached = CACHE / "cifar10_test.npz"
    labels, paths, targets = labelled_images(DATA / "cifar10" / "test")
    if cached.is_file():
        with np.load(cached) as data:
            return labels, data["vectors"], data["targets"], float(data["rate"])
    started = time.perf_counter()
    vectors, kept, _ = encode_paths(engine, paths, progress=False)
    rate = len(kept) / (time.perf_counter() - started)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(cached, vectors=vectors, targets=targets[kept], rate=rate)
    return labels, vectors, targets[kept], rate


def candidate_labels(cifar: list[str], count: int) -> list[str]:
    """The CIFAR-10 classes, then the most frequent words of Flickr8k captions."""
    words = Counter()
    for line in (DATA / "flickr8k" / "Flickr8k.token.txt").read_text().splitlines():
        caption = line.split("\t", 1)[-1].lower()
        words.update(w for w in re.findall(r"[a-z]{3,}", caption) if w not in STOPWORDS)
    labels = list(cifar)
    for word, _ in words.most_common():
        if len(labels) >= count:
            break
        if word not in labels:
            labels.append(word)
    return labels[:count]


def nearest_neighbour_similarity(vectors: np.ndarray, rng: np.random.Generator) -> float:
    """Median cosine of a real anchor to its nearest distinct neighbour."""
    sample = vectors[rng.choice(len(vectors), 500, replace=False)]
    similarities = sample @ vectors.T
    similarities[similarities > 0.9999] = -1  # the anchor itself and exact repeats
    return float(np.median(similarities.max(axis=1)))


def anchors_of_size(
    images: np.ndarray, texts: np.ndarray, n: int, folder: Path
) -> tuple[np.ndarray, np.ndarray]:
    """The real pairs followed by n - len(real) synthetic ones, as float32 memmaps.

    Files left complete by an earlier run in ``folder`` are reused (same seed, same
    vectors); they are written under a temporary name and renamed when complete.
    """
    if n <= len(images):
        return images[:n], texts[:n]
    paths = [folder / f"synthetic_{n}_{name}.npy" for name in ("images", "texts")]
    if all(path.is_file() for path in paths):
        return np.load(paths[0], mmap_mode="r"), np.load(paths[1], mmap_mode="r")
    rng = np.random.default_rng(n)
    out = []
    for path, real in zip(paths, (images, texts), strict=True):
        matrix = np.lib.format.open_memmap(
            path.with_suffix(".partial"), mode="w+", dtype=np.float32,
            shape=(n, real.shape[1]),
        )
        matrix[: len(real)] = real
        # E[cos(x, x + sigma * e)] ~ 1 / sqrt(1 + sigma^2 d) for unit x, e ~ N(0, I).
        target = nearest_neighbour_similarity(real, rng)
        sigma = np.sqrt((1 / target**2 - 1) / real.shape[1])
        out.append((matrix, real, sigma))
    seeds = rng.integers(0, len(images), n)
    for start in range(len(images), n, 50_000):
        stop = min(start + 50_000, n)
        for matrix, real, sigma in out:
            block = real[seeds[start:stop]] + sigma * rng.standard_normal(
                (stop - start, real.shape[1]), dtype=np.float32
            )
            matrix[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    for path, (matrix, _, _) in zip(paths, out, strict=True):
        matrix.flush()
        path.with_suffix(".partial").rename(path)
    return np.load(paths[0], mmap_mode="r"), np.load(paths[1], mmap_mode="r")


# The dense reference (after the official implementation, noranta4/ASIF)


class DenseASIF:
    """ASIF with full similarity matrices, chunked to a memory budget.

    Args:
        anchor_images: (N, image_dim) unit vectors.
        anchor_texts: (N, text_dim) unit vectors.
        k, p: Non-zeros kept per relative representation and their exponent.
        budget_bytes: Largest similarity block held at once. Defaults to 1 GiB.
    """

    def __init__(self, anchor_images: np.ndarray, anchor_texts: np.ndarray, k: int,
                 p: float, budget_bytes: int = 1 << 30) -> None:
        # Copied into RAM, as the official implementation holds its anchors: reading
        # them from a memory-mapped file would time the disk, not the method.
        self.images = torch.from_numpy(np.array(anchor_images, dtype=np.float32))
        self.texts = torch.from_numpy(np.array(anchor_texts, dtype=np.float32))
        self.k, self.p, self.budget = k, p, budget_bytes

    def relative(self, queries: np.ndarray, anchors: torch.Tensor,
                 p: float | None = None) -> sp.csr_matrix:
        """(n, N) sparse relative representations: top-k of the full similarities."""
        n, total = len(queries), anchors.shape[0]
        chunk = max(1, self.budget // (4 * total))
        rows, columns, values = [], [], []
        with torch.no_grad():
            for start in range(0, n, chunk):
                block = torch.from_numpy(queries[start : start + chunk]) @ anchors.T  # (c, N)
                top, index = torch.topk(block, self.k, dim=1)
                top = top.clamp(min=0).double() ** (self.p if p is None else p)
                top /= top.norm(dim=1, keepdim=True).clamp(min=1e-12)
                rows.append(np.repeat(np.arange(start, start + len(block)), self.k))
                columns.append(index.numpy().ravel())
                values.append(top.numpy().ravel())
        return sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
            shape=(n, total),
        )

    def text_side(self, prompts: np.ndarray) -> sp.csr_matrix:
        return self.relative(prompts, self.texts)


# Measurements


def shard_parts(shard: Path) -> dict[str, int]:
    """Bytes on disk of an Edge shard by role."""
    parts = dict.fromkeys(("originals", "quantized", "graph", "ids", "payload", "wal", "other"), 0)
    for file in (f for f in shard.rglob("*") if f.is_file()):
        relative = str(file.relative_to(shard))
        role = ("originals" if file.name == "matrix.dat" else
                "quantized" if file.name.startswith("quantized") else
                "graph" if "vector_index-" in relative else
                "ids" if file.name.startswith("id_tracker") else
                "payload" if "payload_" in relative else
                "wal" if relative.startswith("wal") else "other")
        parts[role] += file.stat().st_size
    return parts


def resident_memory(shard: Path, queries: np.ndarray) -> dict[str, int]:
    """RSS of a fresh process that opens the shard and runs HNSW searches."""
    np.save(shard.parent / "rss_queries.npy", queries)
    output = subprocess.run(
        [sys.executable, __file__, "--rss", str(shard)], capture_output=True, text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def _rss_child(shard: Path) -> None:
    import qdrant_edge as qe

    def status() -> dict[str, int]:
        fields = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = int(value.split()[0]) * 1024
        return fields

    queries = np.load(shard.parent / "rss_queries.npy")
    before = status()
    edge = qe.EdgeShard.load(str(shard))
    params = qe.SearchParams(hnsw_ef=K, quantization=qe.QuantizationSearchParams(rescore=True))
    for row in queries:
        edge.query(qe.QueryRequest(limit=K, query=qe.Query.Nearest(row.tolist(), using="image"),
                                   params=params, with_payload=False, with_vector=False))
    after = status()
    edge.close()
    print(json.dumps({key: after[key] - before[key] for key in after}))


def client_local_upsert(images: np.ndarray, texts: np.ndarray, n: int = 5000) -> float:
    """Pairs/s into qdrant-client's in-process mode (the server path's code, no server)."""
    store = ServerAnchorStore.from_location(":memory:")
    store.create(CollectionSchema(name="upsert-probe", image_dim=images.shape[1],
                                  text_dim=texts.shape[1]))
    started = time.perf_counter()
    for start in range(0, n, 500):
        store.upsert("upsert-probe", list(range(start + 1, start + 501)),
                     images[start : start + 500], texts[start : start + 500], [PAYLOAD] * 500)
    rate = n / (time.perf_counter() - started)
    store.close()
    return rate


def percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000)


def build(platform: Platform, name: str, images: np.ndarray, texts: np.ndarray,
          quantization: str | None, m: int, ef_construct: int) -> dict[str, float]:
    platform.create_collection(name, k=K, p=P, templates=TEMPLATES, exact_search=False,
                               quantization=quantization, hnsw_m=m,
                               hnsw_ef_construct=ef_construct)
    started = time.perf_counter()
    for start in range(0, len(images), 2000):
        stop = min(start + 2000, len(images))
        platform.store.upsert(name, list(range(start + 1, stop + 1)),
                              np.asarray(images[start:stop]), np.asarray(texts[start:stop]),
                              [PAYLOAD] * (stop - start))
    upserted = time.perf_counter()
    platform.store.optimize(name)  # type: ignore[attr-defined]
    indexed = time.perf_counter()
    return {"upsert_pairs_per_s": len(images) / (upserted - started),
            "index_build_s": indexed - upserted}


def measure_size(platform: Platform, name: str, queries: np.ndarray,
                 label_sets: dict[int, list[str]], reference: DenseASIF,
                 prompt_vectors: dict[int, np.ndarray], efs: list[int],
                 oversampling: float, exact_queries: int) -> dict[str, Any]:
    clear_text_cache(platform.settings.home, name)  # a --keep rerun measures cold set-up too
    engine = platform.engine(name)
    base = replace(engine.options(), oversampling=oversampling)
    exact = replace(base, exact=True)
    row: dict[str, Any] = {}

    # The reference's image side once; its text side and product per label set.
    started = time.perf_counter()
    reference_image = reference.relative(queries, reference.images)
    reference_image_s = time.perf_counter() - started
    reference_ids = [reference_image.indices[reference_image.indptr[i]:reference_image.indptr[i + 1]]
                     for i in range(len(queries))]
    reference_labels, reference_ms, reference_text_ids = {}, {}, {}
    row["reference"] = {}
    for count in label_sets:
        started = time.perf_counter()
        text_relative = reference.text_side(prompt_vectors[count])
        setup = time.perf_counter() - started
        reference_text_ids[count] = [text_relative.indices[text_relative.indptr[i]:
                                                           text_relative.indptr[i + 1]]
                                     for i in range(text_relative.shape[0])]
        started = time.perf_counter()
        scores = np.asarray((reference_image @ text_relative.T).todense())
        product = time.perf_counter() - started
        reference_labels[count] = scores.argmax(axis=1)
        reference_ms[count] = (reference_image_s + product) / len(queries) * 1000
        row["reference"][count] = {"label_setup_s": setup, "ms_per_image": reference_ms[count],
                                   "product_ms_per_image": product / len(queries) * 1000}
    # Qdrant Edge searches on one core (it holds the GIL, and a shard cannot be opened
    # twice), while the reference's matrix products use every core: its image side
    # again on one thread, for the cost per core.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    reference.relative(queries, reference.images)
    row["reference_image_side_one_thread_ms_per_image"] = (
        (time.perf_counter() - started) / len(queries) * 1000)
    torch.set_num_threads(threads)
    # How much the ANN price depends on p: agreement at p=8 for the largest C.
    largest = max(label_sets)
    reference_p8 = np.asarray((reference.relative(queries, reference.images, p=8.0)
                               @ reference.relative(prompt_vectors[largest], reference.texts,
                                                    p=8.0).T).todense()).argmax(axis=1)

    def overlap(results: list[Any], expected: list[np.ndarray] = reference_ids) -> float:
        return float(np.mean([len(np.intersect1d(r.ids - 1, e)) / K
                              for r, e in zip(results, expected, strict=True)]))

    # Qdrant's exact search takes seconds per image at 1M: on the first exact_queries.
    few = slice(0, min(exact_queries, len(queries)))
    started = time.perf_counter()
    exact_results = engine.image_results(queries[few], exact)
    exact_image_s = time.perf_counter() - started
    exact_text = {count: engine.text_results(labels, exact)
                  for count, labels in label_sets.items()}
    row["qdrant_exact"] = {
        "queries": len(exact_results),
        "image_search_ms_per_image": exact_image_s / len(exact_results) * 1000,
        "topk_overlap": overlap(exact_results, reference_ids[few]),
        "label_agreement": {
            count: float((engine.scores(exact_results, exact_text[count],
                                        len(labels), exact).argmax(axis=1)
                          == reference_labels[count][few]).mean())
            for count, labels in label_sets.items()}}

    row["hnsw"] = []
    for ef in efs:
        options = replace(base, hnsw_ef=ef)
        image_results = engine.image_results(queries, options)
        entry: dict[str, Any] = {"ef": ef, "topk_overlap": overlap(image_results), "per_C": {}}
        for count, labels in label_sets.items():
            measured: dict[str, float] = {}
            started = time.perf_counter()
            engine.classify_vectors(queries[:1], labels, options)  # cold: prompts searched
            measured["label_setup_s"] = time.perf_counter() - started
            single = []
            for vector in queries:
                started = time.perf_counter()
                engine.classify_vectors(vector[None, :], labels, options)
                single.append(time.perf_counter() - started)
            measured["p50_ms"] = percentile_ms(single, 50)
            measured["p95_ms"] = percentile_ms(single, 95)
            started = time.perf_counter()
            predicted = engine.classify_vectors(queries, labels, options).argmax(axis=1)
            measured["images_per_s"] = len(queries) / (time.perf_counter() - started)
            measured["ms_per_image"] = 1000 / measured["images_per_s"]
            measured["reference_ms_per_image"] = reference_ms[count]
            measured["ratio_platform_to_reference"] = (
                measured["ms_per_image"] / reference_ms[count])
            measured["label_agreement"] = float((predicted == reference_labels[count]).mean())
            entry["per_C"][count] = measured
        # Which side costs the agreement: HNSW on one side, exact search on the other.
        text_hnsw = engine.text_results(label_sets[largest], options)
        entry["text_topk_overlap_largest_C"] = overlap(text_hnsw, reference_text_ids[largest])
        entry["label_agreement_hnsw_image_exact_text"] = float((engine.scores(
            image_results, exact_text[largest], largest, options).argmax(axis=1)
            == reference_labels[largest]).mean())
        entry["label_agreement_exact_image_hnsw_text"] = float((engine.scores(
            exact_results, text_hnsw, largest, options).argmax(axis=1)
            == reference_labels[largest][few]).mean())
        p8 = replace(options, p=8.0)  # the text side is cached by now
        entry["label_agreement_p8_largest_C"] = float((engine.scores(
            image_results, engine.text_results(label_sets[largest], p8), largest, p8
        ).argmax(axis=1) == reference_p8).mean())
        row["hnsw"].append(entry)
    return row


def cifar_top1(platform: Platform, name: str, vectors: np.ndarray, targets: np.ndarray,
               labels: list[str], exact: bool) -> float:
    engine = platform.engine(name)
    options = engine.options(exact=exact)
    predicted = np.concatenate([
        engine.classify_vectors(vectors[start : start + 500], labels, options).argmax(axis=1)
        for start in range(0, len(vectors), 500)])
    return float((predicted == targets).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="flickr8k")
    parser.add_argument("--float32-sizes", default="real,100000",
                        help="Anchor counts built with float32 vectors; 'real' is the "
                             "main job's collection.")
    parser.add_argument("--candidates", default="10,100,1000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--int8-sizes", default="real,100000,1000000,1600000",
                        help="Anchor counts built with int8 quantization (originals on "
                             "disk, rescoring).")
    parser.add_argument("--top1-images", type=int, default=10_000)
    parser.add_argument("--efs", default="800,1600,3200",
                        help="HNSW search beams to measure (Qdrant uses at least k).")
    parser.add_argument("--hnsw-m", type=int, default=CollectionSchema.hnsw_m,
                        help="HNSW graph degree; default the platform's.")
    parser.add_argument("--hnsw-ef-construct", type=int,
                        default=CollectionSchema.hnsw_ef_construct,
                        help="HNSW build beam; default the platform's.")
    parser.add_argument("--exact-queries", type=int, default=200,
                        help="Queries also searched with Qdrant's exact search (seconds "
                             "per image at 1M).")
    parser.add_argument("--oversampling", type=float, default=QueryOptions.oversampling,
                        help="int8 candidates per anchor kept before rescoring; default "
                             "the platform's.")
    parser.add_argument("--work", type=Path, help="Scratch folder; default a temporary one.")
    parser.add_argument("--keep", action="store_true",
                        help="Keep --work's built collections and synthetic anchors, and "
                             "reuse those already there (to measure other --efs without "
                             "rebuilding).")
    parser.add_argument("--rss", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss:
        _rss_child(args.rss)
        return
    torch.set_num_threads(torch.get_num_threads())
    settings = Settings.from_env()
    if args.keep and not args.work:
        parser.error("--keep needs --work")
    work = Path(args.work or tempfile.mkdtemp(prefix="asif-scale-"))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"k": K, "p": P, "oversampling": args.oversampling,
                              "hnsw_m": args.hnsw_m,
                              "hnsw_ef_construct": args.hnsw_ef_construct, "sizes": []}

    real_images, real_texts = real_anchors(settings, args.collection)
    platform = Platform(replace(settings, home=work / "home"))
    built_names = {info.name for info in platform.list_collections()}
    if "probe" not in built_names:
        platform.create_collection("probe", k=K, p=P, templates=TEMPLATES)
    probe = platform.engine("probe")
    cifar, cifar_vectors, targets, rate = cifar_queries(probe)
    captions = [line.split("\t", 1)[1] for line in
                (DATA / "flickr8k" / "Flickr8k.token.txt").read_text().splitlines()[:2000]]
    started = time.perf_counter()
    probe.text_encoder.encode(captions)
    report["encoding"] = {"images_per_s_cifar_decode_included": rate,
                          "captions_per_s": len(captions) / (time.perf_counter() - started)}
    counts = [int(c) for c in args.candidates.split(",")]
    label_sets = {c: candidate_labels(cifar, c) for c in counts}
    prompt_vectors = {c: probe.text_encoder.encode([TEMPLATES[0].format(x) for x in labels])
                      for c, labels in label_sets.items()}
    rng = np.random.default_rng(0)
    queries = cifar_vectors[rng.choice(len(cifar_vectors), args.queries, replace=False)]
    print(f"encoding: {rate:.0f} CIFAR images/s, "
          f"{report['encoding']['captions_per_s']:.0f} captions/s", flush=True)

    def sizes(text: str) -> list[int]:
        return [len(real_images) if s == "real" else int(s) for s in text.split(",") if s]

    int8_sizes = sizes(args.int8_sizes)
    efs = [int(e) for e in args.efs.split(",")]
    report["client_local_upsert_pairs_per_s"] = client_local_upsert(real_images, real_texts)
    top1_subset = np.sort(rng.permutation(len(cifar_vectors))[: args.top1_images])
    float32_sizes = sizes(args.float32_sizes)
    for n in sorted(set(float32_sizes) | set(int8_sizes)):
        images, texts = anchors_of_size(real_images, real_texts, n, work)
        reference = DenseASIF(np.asarray(images), np.asarray(texts), K, P)
        kinds = ([None] if n in float32_sizes else []) + (["int8"] if n in int8_sizes else [])
        for quantization in kinds:
            name = f"n{n}" + ("-int8" if quantization else "")
            build_record = work / f"{name}.build.json"
            if name in built_names and build_record.is_file():
                print(f"reusing {name} ...", flush=True)
                built = json.loads(build_record.read_text())
            else:
                if name in built_names:
                    sys.exit(f"{name} in {work} is from an interrupted build: remove "
                             f"{work} and run again")
                print(f"building {name} ...", flush=True)
                built = build(platform, name, images, texts, quantization, args.hnsw_m,
                              args.hnsw_ef_construct)
                build_record.write_text(json.dumps(built))
            shard = platform.settings.qdrant_path / name
            platform.store.close()  # the RSS child opens the shard itself
            del platform.__dict__["store"]
            memory = resident_memory(shard, queries[:50])
            parts = shard_parts(shard)
            # What a search keeps hot: the graph, the id map and the vectors it ranks
            # with (int8 copies when quantized; float32 originals are then read
            # only to rescore the candidates).
            hot = parts["graph"] + parts["ids"] + (
                parts["quantized"] if quantization else parts["originals"])
            row = {"N": n, "quantization": quantization or "float32", **built,
                   "disk_bytes_per_pair": sum(parts.values()) / n,
                   "disk_parts_bytes_per_pair": {k: v / n for k, v in parts.items()},
                   "search_working_set_bytes_per_pair": hot / n,
                   "rss_after_50_searches_bytes_per_pair": memory["VmRSS"] / n,
                   "rss_anon_bytes_per_pair": memory["RssAnon"] / n}
            row.update(measure_size(platform, name, queries, label_sets, reference,
                                    prompt_vectors, efs, args.oversampling,
                                    args.exact_queries))
            if n == len(real_images):
                for mode, exact in (("hnsw", False), ("exact", True)):
                    row[f"cifar10_top1_{mode}"] = cifar_top1(
                        platform, name, cifar_vectors[top1_subset], targets[top1_subset],
                        cifar, exact=exact)
            report["sizes"].append(row)
            print(json.dumps(row, default=float), flush=True)
            if not args.keep:
                platform.store.drop(name)
        del reference
        for leftover in work.glob(f"synthetic_{n}_*"):
            if not args.keep:
                leftover.unlink()
    platform.close()
    print_tables(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def print_tables(report: dict[str, Any]) -> None:
    print(f"\nclassify, k={report['k']} p={report['p']:g}, per image, image encoding "
          "excluded; agreement and overlap against exact ASIF (the dense reference)")
    print(f"{'N':>9} {'vectors':>8} {'C':>5} {'ef':>5} {'p50 ms':>7} {'p95 ms':>7} {'img/s':>7} "
          f"{'ms/img':>7} {'ref ms/img':>10} {'ratio':>6} {'agree':>6} {'overlap':>7} "
          f"{'setup s':>7}")
    for row in report["sizes"]:
        for entry in row["hnsw"]:
            for count, m in entry["per_C"].items():
                print(f"{row['N']:>9,} {row['quantization']:>8} {count:>5} {entry['ef']:>5} "
                      f"{m['p50_ms']:>7.1f} "
                      f"{m['p95_ms']:>7.1f} {m['images_per_s']:>7.1f} "
                      f"{m['ms_per_image']:>7.2f} {m['reference_ms_per_image']:>10.2f} "
                      f"{m['ratio_platform_to_reference']:>6.2f} {m['label_agreement']:>6.1%} "
                      f"{entry['topk_overlap']:>7.1%} {m['label_setup_s']:>7.1f}")
    print(f"\n{'N':>9} {'vectors':>8} {'upsert/s':>9} {'index s':>8} {'disk B/pair':>11} "
          f"{'hot B/pair':>10} {'RSS B/pair':>10} {'top-1 hnsw':>10} {'top-1 exact':>11}")
    for row in report["sizes"]:
        hnsw, exact = row.get("cifar10_top1_hnsw"), row.get("cifar10_top1_exact")
        print(f"{row['N']:>9,} {row['quantization']:>8} {row['upsert_pairs_per_s']:>9.0f} "
              f"{row['index_build_s']:>8.0f} {row['disk_bytes_per_pair']:>11.0f} "
              f"{row['search_working_set_bytes_per_pair']:>10.0f} "
              f"{row['rss_after_50_searches_bytes_per_pair']:>10.0f} "
              f"{'' if hnsw is None else f'{hnsw:.2%}':>10} "
              f"{'' if exact is None else f'{exact:.2%}':>11}")
    print(f"\nthe price of HNSW: top-k overlap, and label agreement with exact ASIF "
          f"for the largest C at p={report['p']:g} and p=8")
    print("(image / text overlap: share of the exact top-k that HNSW returned; the last two "
          "columns use HNSW on one side only)")
    print(f"{'N':>9} {'vectors':>8} {'ef':>5} {'img ovl':>7} {'txt ovl':>7} {'agree':>6} "
          f"{'agree p8':>8} {'HNSW img':>8} {'HNSW txt':>8}")
    for row in report["sizes"]:
        largest = max(row["hnsw"][0]["per_C"])
        for entry in row["hnsw"]:
            print(f"{row['N']:>9,} {row['quantization']:>8} {entry['ef']:>5} "
                  f"{entry['topk_overlap']:>7.1%} {entry['text_topk_overlap_largest_C']:>7.1%} "
                  f"{entry['per_C'][largest]['label_agreement']:>6.1%} "
                  f"{entry['label_agreement_p8_largest_C']:>8.1%} "
                  f"{entry['label_agreement_hnsw_image_exact_text']:>8.1%} "
                  f"{entry['label_agreement_exact_image_hnsw_text']:>8.1%}")
        exact = row["qdrant_exact"]
        print(f"{row['N']:>9,} {row['quantization']:>8} exact: "
              f"{exact['image_search_ms_per_image']:.1f} ms/image, overlap "
              f"{exact['topk_overlap']:.1%}, agreement {exact['label_agreement'][largest]:.1%}; "
              f"reference image side on one thread "
              f"{row['reference_image_side_one_thread_ms_per_image']:.1f} ms/image")
    print(f"\nqdrant-client in-process upsert: {report['client_local_upsert_pairs_per_s']:.0f} "
          "pairs/s")


if __name__ == "__main__":
    main()
