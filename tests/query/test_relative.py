"""The sparse engine math against the dense reference."""

from __future__ import annotations

import numpy as np
import pytest
from dense_reference import asif_scores

from asif_platform.query.relative import anchor_vocabulary, overlap_scores, relative_matrix
from asif_platform.store.base import SearchResult


def top_k(similarities: np.ndarray, ids: np.ndarray, k: int) -> list[SearchResult]:
    order = np.argsort(-similarities, axis=1)[:, :k]
    return [SearchResult(ids=ids[row], scores=similarities[i, row].astype(np.float32))
            for i, row in enumerate(order)]


@pytest.mark.parametrize(("k", "p"), [(1, 1.0), (5, 1.0), (20, 4.0), (60, 8.0), (500, 2.0)])
def test_sparse_scores_equal_dense_reference(k: int, p: float) -> None:
    rng = np.random.default_rng(k)
    anchors_image = rng.normal(size=(60, 10))
    anchors_text = rng.normal(size=(60, 6))
    anchors_image /= np.linalg.norm(anchors_image, axis=1, keepdims=True)
    anchors_text /= np.linalg.norm(anchors_text, axis=1, keepdims=True)
    queries = anchors_image[:7] + 0.3 * rng.normal(size=(7, 10))
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    captions = anchors_text[10:14] + 0.3 * rng.normal(size=(4, 6))
    captions /= np.linalg.norm(captions, axis=1, keepdims=True)
    ids = rng.choice(10**12, size=60, replace=False).astype(np.int64)

    image_results = top_k(queries @ anchors_image.T, ids, k)
    text_results = top_k(captions @ anchors_text.T, ids, k)
    vocabulary = anchor_vocabulary(image_results, text_results)
    scores = overlap_scores(
        relative_matrix(image_results, vocabulary, k, p),
        relative_matrix(text_results, vocabulary, k, p),
    )
    # The engine's path: columns of the text side only, image entries restricted.
    text_vocabulary = anchor_vocabulary(text_results)
    restricted = overlap_scores(
        relative_matrix(image_results, text_vocabulary, k, p, restrict=True),
        relative_matrix(text_results, text_vocabulary, k, p),
    )

    expected = asif_scores(queries, anchors_image, captions, anchors_text, k, p)
    np.testing.assert_allclose(restricted, expected, atol=1e-6)
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_rows_are_unit_norm_with_at_most_k_entries() -> None:
    results = [SearchResult(np.array([5, 3, 9], np.int64), np.array([0.9, 0.5, -0.2], np.float32))]
    vocabulary = anchor_vocabulary(results)
    matrix = relative_matrix(results, vocabulary, k=2, p=2.0)
    assert matrix.nnz == 2
    assert np.isclose(np.linalg.norm(matrix.toarray()), 1.0)
    # Negative similarities are clamped to zero and so never contribute.
    only_negative = [SearchResult(np.array([1], np.int64), np.array([-0.5], np.float32))]
    assert relative_matrix(only_negative, np.array([1]), k=1, p=1.0).nnz == 0


def test_empty_results_give_zero_scores() -> None:
    empty = [SearchResult(np.empty(0, np.int64), np.empty(0, np.float32))]
    vocabulary = anchor_vocabulary(empty, empty)
    scores = overlap_scores(relative_matrix(empty, vocabulary, 5, 1.0),
                            relative_matrix(empty, vocabulary, 5, 1.0))
    assert scores.shape == (1, 1) and scores[0, 0] == 0
