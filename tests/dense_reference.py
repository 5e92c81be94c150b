"""An independent dense implementation of the ASIF formulas, for fidelity tests.

It follows the paper directly: full similarity matrices, top-k per row, negatives
clamped to 0, power p, L2 normalisation, then a dense matrix product.
"""

from __future__ import annotations

import numpy as np


def relative(similarities: np.ndarray, k: int, p: float) -> np.ndarray:
    """(n, N) similarities -> (n, N) dense relative representations."""
    out = np.zeros_like(similarities, dtype=np.float64)
    k = min(k, similarities.shape[1])
    top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
    rows = np.arange(similarities.shape[0])[:, None]
    out[rows, top] = np.clip(similarities[rows, top], 0, None) ** p
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1)


def asif_scores(
    query_images: np.ndarray,
    anchor_images: np.ndarray,
    captions: np.ndarray,
    anchor_captions: np.ndarray,
    k: int,
    p: float,
) -> np.ndarray:
    """(n_images, n_captions) ASIF scores, everything dense, in float64."""
    image_relative = relative(query_images.astype(np.float64) @ anchor_images.T, k, p)
    text_relative = relative(captions.astype(np.float64) @ anchor_captions.T, k, p)
    return image_relative @ text_relative.T
