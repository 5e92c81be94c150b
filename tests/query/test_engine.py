"""The query engine end to end on the fake encoders, against the dense reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import COLOURS
from dense_reference import asif_scores
from fakes import fake_loader
from PIL import Image

from asif_platform.deletion import DeletionSelector, apply_request, create_request
from asif_platform.encoders.preprocessing import load_image
from asif_platform.ingest.pipeline import ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.platform import Platform
from asif_platform.query.cache import text_cache_dir
from asif_platform.query.engine import QueryEngine
from asif_platform.store import AnchorFilter

LABELS = list(COLOURS)


@pytest.fixture
def filled(platform: Platform, pair_folder: Path) -> Platform:
    platform.create_collection("colours", k=10, p=2.0, templates=["a {} square"])
    ingest(platform, "colours", read_pairs(pair_folder / "pairs.jsonl"))
    return platform


def query_images(tmp_path: Path) -> list[Image.Image]:
    images = []
    for rgb in COLOURS.values():
        pixels = np.clip(np.array(rgb)[None, None, :] + 10, 0, 255).astype(np.uint8)
        Image.fromarray(np.repeat(np.repeat(pixels, 16, 0), 16, 1)).save(tmp_path / "q.png")
        images.append(load_image(tmp_path / "q.png"))
    return images


# Pairs of one image share an image vector, and identical captions a text vector, so
# top-k is only well defined when k does not cut through such a tie: here the ties come
# in groups of 2 (images) and 6 and 18 (captions), so k = 6 and 24 cut between groups.
@pytest.mark.parametrize(("k", "p", "aggregation"), [(6, 1.0, "mean"), (24, 4.0, "max"),
                                                     (100, 8.0, "embedding")])
def test_engine_equals_dense_reference(filled: Platform, tmp_path: Path, k: int, p: float,
                                       aggregation: str) -> None:
    engine = filled.engine("colours")
    templates = ["a {} square", "something {}"]
    options = engine.options(k=k, p=p, templates=templates, aggregation=aggregation, exact=True)
    vectors = engine.encode_images(query_images(tmp_path))

    scores = engine.classify_vectors(vectors, LABELS, options)

    ids = filled.store.list_ids("colours")
    stored = filled.store.retrieve("colours", ids.tolist(), with_vectors=True)
    anchor_images = np.stack([stored[i]["image"] for i in ids.tolist()])
    anchor_texts = np.stack([stored[i]["text"] for i in ids.tolist()])
    prompts = engine.text_encoder.encode([t.format(label) for label in LABELS for t in templates])
    if aggregation == "embedding":
        prompts = prompts.reshape(len(LABELS), 2, -1).mean(axis=1)
        prompts /= np.linalg.norm(prompts, axis=1, keepdims=True)
    dense = asif_scores(vectors, anchor_images, prompts, anchor_texts, k, p)
    if aggregation != "embedding":
        dense = dense.reshape(len(vectors), len(LABELS), 2)
        dense = dense.max(axis=2) if aggregation == "max" else dense.mean(axis=2)
    np.testing.assert_allclose(scores, dense, atol=1e-5)
    assert (scores.argmax(axis=1) == dense.argmax(axis=1)).all()


def test_colours_are_classified(filled: Platform, tmp_path: Path) -> None:
    engine = filled.engine("colours")
    vectors = engine.encode_images(query_images(tmp_path))
    scores = engine.classify_vectors(vectors, LABELS, engine.options())
    assert scores.argmax(axis=1).tolist() == [0, 1, 2, 3]


def test_text_side_is_cached_until_the_collection_changes(
    filled: Platform, tmp_path: Path, pair_folder: Path
) -> None:
    engine = filled.engine("colours")
    vectors = engine.encode_images(query_images(tmp_path))
    options = engine.options()
    engine.classify_vectors(vectors, LABELS, options)
    first = engine.text_queries
    engine.classify_vectors(vectors, LABELS, options)
    assert engine.text_queries == first  # no text-side Qdrant query the second time

    (pair_folder / "more.jsonl").write_text('{"image": "red1.png", "caption": "crimson"}\n')
    ingest(filled, "colours", read_pairs(pair_folder / "more.jsonl"))
    engine.classify_vectors(vectors, LABELS, options)
    assert engine.text_queries == 2 * first


def test_text_side_cache_is_shared_by_later_processes(
    filled: Platform, tmp_path: Path, pair_folder: Path
) -> None:
    """A second classify call in a new process does no text-side Qdrant query; a
    collection change or a deletion makes the next call look again."""

    def fresh_engine() -> QueryEngine:
        # A new Platform builds a new engine, as a new `asif classify` process does.
        other = Platform(filled.settings, store=filled.store, catalog=filled.catalog,
                         encoder_loader=fake_loader)  # type: ignore[arg-type]
        return other.engine("colours")

    vectors = filled.engine("colours").encode_images(query_images(tmp_path))
    first = fresh_engine()
    expected = first.classify_vectors(vectors, LABELS, first.options())
    assert first.text_queries == len(LABELS)

    second = fresh_engine()
    np.testing.assert_array_equal(
        second.classify_vectors(vectors, LABELS, second.options()), expected
    )
    assert second.text_queries == 0
    cache = text_cache_dir(filled.settings.home, "colours")
    assert len(list(cache.glob("*.npz"))) == 1

    # A damaged file is a miss, not an error.
    next(cache.glob("*.npz")).write_bytes(b"not a zip file")
    damaged = fresh_engine()
    damaged.classify_vectors(vectors, LABELS, damaged.options())
    assert damaged.text_queries == len(LABELS)

    (pair_folder / "more.jsonl").write_text('{"image": "red1.png", "caption": "crimson"}\n')
    ingest(filled, "colours", read_pairs(pair_folder / "more.jsonl"))
    after_ingest = fresh_engine()
    after_ingest.classify_vectors(vectors, LABELS, after_ingest.options())
    assert after_ingest.text_queries == len(LABELS)

    request = create_request(filled, "colours", DeletionSelector(caption_contains=("crimson",)),
                             legal_basis="test")
    apply_request(filled, request)
    assert not list(cache.glob("*.npz"))  # cleared with the deletion


def test_explanations_trace_to_at_most_k_anchor_pairs(filled: Platform, tmp_path: Path) -> None:
    engine = filled.engine("colours")
    vector = engine.encode_images(query_images(tmp_path)[:1])[0]
    options = engine.options(k=12)  # the 12 pairs of the 6 red images on the image side
    red, blue = engine.explain_vector(vector, ["red", "blue"], options, top=50)
    scores = engine.classify_vectors(vector[None, :], ["red", "blue"], options)[0]
    assert red.score == pytest.approx(scores[0]) and blue.score == pytest.approx(scores[1])
    assert 0 < len(red.contributions) <= 12
    assert sum(c.weight for c in red.contributions) == pytest.approx(red.score)
    assert all("red" in c.caption for c in red.contributions)
    assert all(Path(c.image_ref).name.startswith("red") for c in red.contributions)


def test_filter_excludes_anchors_from_both_sides(filled: Platform, tmp_path: Path) -> None:
    engine = filled.engine("colours")
    vector = engine.encode_images(query_images(tmp_path)[:1])[0]
    everything = engine.explain_vector(vector, ["red"], engine.options(k=4), top=10)[0]
    banned = [c.anchor_id for c in everything.contributions]
    options = engine.options(k=4, anchor_filter=AnchorFilter(exclude_ids=banned))
    filtered = engine.explain_vector(vector, ["red"], options, top=10)[0]
    assert not {c.anchor_id for c in filtered.contributions} & set(banned)
