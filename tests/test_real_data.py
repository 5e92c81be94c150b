"""Fidelity on real data: the engine against the dense ASIF formulas, real encoders.

Slow (loads both real encoders and encodes a few hundred photos): run with -m slow.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA
from dense_reference import asif_scores

from asif_platform.encoders import load_image
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.ingest.records import PairRecord
from asif_platform.platform import Platform
from asif_platform.settings import Settings

pytestmark = pytest.mark.slow

FLICKR = SHARED_DATA / "flickr8k"
CIFAR = SHARED_DATA / "cifar10" / "test"
LABELS = sorted(path.name for path in CIFAR.iterdir())


@pytest.fixture(scope="module")
def real_platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    """300 Flickr8k photos with five captions each, none repeated anywhere in the set.

    Top-k is only well defined away from ties: the five pairs of a photo share its
    image vector (so k is a multiple of 5 and every photo has exactly five pairs),
    and a caption repeated across photos would tie on the text side.
    """
    home = tmp_path_factory.mktemp("real") / "asif-data"
    platform = Platform(Settings(home=home))
    names = (FLICKR / "Flickr_8k.trainImages.txt").read_text().split()[:400]
    split = tmp_path_factory.mktemp("split") / "images.txt"
    split.write_text("\n".join(names) + "\n")
    records = read_pairs(FLICKR / "Flickr8k.token.txt", split_files=[split])
    uses = Counter(record.caption.lower() for record in records)
    by_image: dict[Path, list[PairRecord]] = {}
    for record in records:
        by_image.setdefault(record.image, []).append(record)
    clean = [pairs for pairs in by_image.values()
             if len(pairs) == 5 and all(uses[p.caption.lower()] == 1 for p in pairs)][:300]
    platform.create_collection("flickr-300", k=800, p=8.0,
                               templates=["a photo of a {}.", "a picture of a {}."])
    report = ingest(platform, "flickr-300", [pair for pairs in clean for pair in pairs])
    assert report.pairs_added == 1_500 and report.images_encoded == 300
    return platform


def cifar_vectors(platform: Platform, per_class: int) -> np.ndarray:
    engine = platform.engine("flickr-300")
    paths: list[Path] = []
    for label in LABELS:
        paths += sorted((CIFAR / label).glob("*.jpg"))[:per_class]
    return engine.encode_images([load_image(path) for path in paths])


# Five captions per photo tie on the image side, so k is a multiple of 5 (and one k
# exceeds the collection).
@pytest.mark.parametrize(("k", "p", "aggregation"), [(50, 1.0, "mean"), (200, 4.0, "max"),
                                                     (800, 8.0, "embedding")])
def test_engine_agrees_with_dense_asif_on_real_embeddings(
    real_platform: Platform, k: int, p: float, aggregation: str
) -> None:
    engine = real_platform.engine("flickr-300")
    options = engine.options(k=k, p=p, aggregation=aggregation, exact=True)
    vectors = cifar_vectors(real_platform, per_class=3)

    scores = engine.classify_vectors(vectors, LABELS, options)

    ids = real_platform.store.list_ids("flickr-300").tolist()
    stored = real_platform.store.retrieve("flickr-300", ids, with_vectors=True)
    anchor_images = np.stack([stored[i]["image"] for i in ids])
    anchor_texts = np.stack([stored[i]["text"] for i in ids])
    templates = list(options.templates)
    prompts = engine.text_encoder.encode([t.format(label) for label in LABELS for t in templates])
    if aggregation == "embedding":
        prompts = prompts.reshape(len(LABELS), len(templates), -1).mean(axis=1)
        prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    dense = asif_scores(vectors, anchor_images, prompts, anchor_texts, k, p)
    if aggregation != "embedding":
        dense = dense.reshape(len(vectors), len(LABELS), len(templates))
        dense = dense.max(axis=2) if aggregation == "max" else dense.mean(axis=2)

    assert scores.shape == (len(vectors), len(LABELS))
    np.testing.assert_allclose(scores, dense, atol=1e-5)
    # Identical rankings: the engine's scores, in the dense ranking's order, never rise
    # (beyond float32 noise), and the top label is the same wherever it is not a tie.
    order = np.argsort(-dense, axis=1, kind="stable")
    assert (np.diff(np.take_along_axis(scores, order, axis=1), axis=1) <= 1e-6).all()
    top_two = np.sort(dense, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 1e-5
    assert (scores.argmax(axis=1) == dense.argmax(axis=1))[clear].all() and clear.any()
    assert np.count_nonzero(scores) > 0.5 * scores.size  # the comparison is not all zeros
