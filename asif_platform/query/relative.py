"""ASIF relative representations: the pure math, no I/O.

Notation of the paper (Norelli et al., 2023): for a query x and anchors a_1..a_N,
the relative representation is r(x)_j = sim(x, a_j), kept only for the k largest
entries, clamped at 0, raised to the power p and L2-normalised. Images are compared
with anchor images, captions with anchor captions; both land in the same space
indexed by anchors, so an image's score for a caption is the dot product of the two
sparse vectors.

Inputs here are the top-k search results already returned by the anchor store:
for each query, anchor ids and cosine similarities sorted in descending order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from asif_platform.store.base import SearchResult

__all__ = ["anchor_vocabulary", "overlap_scores", "relative_matrix"]


def anchor_vocabulary(*result_sets: Sequence[SearchResult]) -> np.ndarray:
    """Sorted unique anchor ids over every result: the columns of the shared space.

    Returns:
        int64 array of shape (n_columns,).
    """
    chunks = [result.ids for results in result_sets for result in results]
    if not chunks:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(chunks))


def relative_matrix(
    results: Sequence[SearchResult],
    vocabulary: np.ndarray,
    k: int,
    p: float,
    *,
    restrict: bool = False,
) -> sp.csr_matrix:
    """Sparse relative representations of a batch of queries.

    Args:
        results: One search result per query, ids and scores in descending order
            of score, each at least ``k`` long unless the collection is smaller.
        vocabulary: Sorted anchor ids (columns), from :func:`anchor_vocabulary`.
        k: Keep the k most similar anchors of each query.
        p: Exponent applied to the clamped similarities.
        restrict: Drop, after normalisation, the entries of anchors missing from
            ``vocabulary`` (they cannot overlap a side built on it); otherwise
            every id must be in it. Defaults to False.

    Returns:
        csr_matrix of shape (len(results), len(vocabulary)), float64, each row of
        unit L2 norm before any restriction, with at most k non-zeros.
    """
    lengths = np.fromiter((min(k, len(r.ids)) for r in results), np.int64, len(results))
    indptr = np.zeros(len(results) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    if indptr[-1] == 0:
        return sp.csr_matrix((len(results), len(vocabulary)), dtype=np.float64)

    ids = np.concatenate([r.ids[:n] for r, n in zip(results, lengths, strict=True)])
    scores = np.concatenate(
        [r.scores[:n] for r, n in zip(results, lengths, strict=True)]
    ).astype(np.float64)
    values = np.power(np.maximum(scores, 0.0), p)  # (nnz,)

    row_of_entry = np.repeat(np.arange(len(results)), lengths)
    norms = np.sqrt(np.bincount(row_of_entry, weights=values**2, minlength=len(results)))
    values /= np.where(norms > 0, norms, 1.0)[row_of_entry]

    columns = np.searchsorted(vocabulary, ids)
    if restrict:
        known = columns < len(vocabulary)
        known[known] = vocabulary[columns[known]] == ids[known]
        values, columns = values[known], columns[known]
        indptr[1:] = np.cumsum(np.bincount(row_of_entry[known], minlength=len(results)))
    matrix = sp.csr_matrix(
        (values, columns, indptr), shape=(len(results), len(vocabulary))
    )
    matrix.eliminate_zeros()
    return matrix


def overlap_scores(image_relative: sp.csr_matrix, text_relative: sp.csr_matrix) -> np.ndarray:
    """Scores of every image against every caption: the sparse dot products.

    Args:
        image_relative: (n_images, n_columns) relative representations.
        text_relative: (n_captions, n_columns) relative representations.

    Returns:
        float64 array of shape (n_images, n_captions), values in [0, 1].
    """
    return np.asarray((image_relative @ text_relative.T).todense())
