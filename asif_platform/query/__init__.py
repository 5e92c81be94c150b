"""Query engine: relative representations, classification, explanations, evaluation."""

from __future__ import annotations

from asif_platform.query.engine import Contribution, Explanation, QueryEngine, QueryOptions
from asif_platform.query.relative import anchor_vocabulary, overlap_scores, relative_matrix

__all__ = [
    "Contribution",
    "Explanation",
    "QueryEngine",
    "QueryOptions",
    "anchor_vocabulary",
    "overlap_scores",
    "relative_matrix",
]
