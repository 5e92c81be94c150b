"""The query engine: Qdrant round trips, batching and caching around the ASIF math."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from PIL import Image
from sqlalchemy import func, select

from asif_platform.catalog import Anchor, Collection, utcnow
from asif_platform.encoders.base import ImageEncoder, TextEncoder
from asif_platform.errors import ConfigError
from asif_platform.query.cache import TextResultCache, text_cache_dir
from asif_platform.query.relative import anchor_vocabulary, relative_matrix
from asif_platform.store.base import AnchorFilter, SearchResult

if TYPE_CHECKING:
    from asif_platform.platform import Platform

__all__ = ["Contribution", "Explanation", "QueryEngine", "QueryOptions"]

logger = logging.getLogger(__name__)

# Pairs whose consent is revoked or expired never contribute, whatever the policy.
ALWAYS_EXCLUDED_CONSENT = ("revoked", "expired")


@dataclass(frozen=True)
class QueryOptions:
    """How to turn similarities into scores; defaults come from the collection.

    Attributes:
        k: Anchors kept per relative representation.
        p: Exponent applied to the clamped similarities.
        templates: Prompt templates, each with one ``{}`` for the label.
        aggregation: How a label with several templates is scored: ``"mean"`` of
            the per-template scores, their ``"max"``, or ``"embedding"`` (one query
            with the mean of the template embeddings, as CLIP does).
        exact: Brute-force search instead of HNSW.
        hnsw_ef: HNSW beam when not exact; None uses max(k, 128).
        anchor_filter: Payload conditions every contributing anchor must meet.
        policy: Consent states and license classes this call excludes on top of the
            collection's policy (``{"exclude_consent": [...],
            "exclude_license_classes": [...]}``); a call can only narrow. Revoked
            and expired consent are always excluded.
        oversampling: In an int8 collection, candidates ranked with the int8 copies
            per anchor kept, before rescoring with the float32 originals. Defaults
            to 2.0 (with 1.0, int8 rounding costs top-k recall); no effect on
            float32 collections.
    """

    k: int
    p: float
    templates: tuple[str, ...]
    aggregation: str
    exact: bool
    hnsw_ef: int | None
    anchor_filter: AnchorFilter | None = None
    policy: Mapping[str, Sequence[str]] | None = None
    oversampling: float = 2.0

    def ef_for(self, limit: int) -> int | None:
        if self.exact:
            return None
        return self.hnsw_ef or max(limit, 128)


@dataclass(frozen=True)
class Contribution:
    """One anchor pair's share of an image-label score."""

    anchor_id: int
    weight: float
    share: float
    image_similarity: float
    text_similarity: float
    caption: str
    image_ref: str
    source_dataset: str
    source_record_id: str


@dataclass(frozen=True)
class Explanation:
    label: str
    score: float
    contributions: list[Contribution]


class QueryEngine:
    """Scores images against candidate captions for one collection.

    Args:
        platform: Gives access to the store and the catalog.
        collection: The collection's catalog row (defaults and fingerprints).
        image_encoder: The collection's image encoder.
        text_encoder: The collection's text encoder.
    """

    def __init__(
        self,
        platform: Platform,
        collection: Collection,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
    ) -> None:
        self.platform = platform
        self.collection = collection
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.text_queries = 0  # Qdrant text-side searches issued, for tests and stats
        self._text_cache: dict[tuple[Any, ...], list[SearchResult]] = {}
        self._disk_cache = TextResultCache(
            text_cache_dir(platform.settings.home, collection.name),
            salt=(collection.id, collection.text_fingerprint),
        )
        self._expiry: tuple[int, Any] | None = None  # (revision, next consent expiry)
        self._relative_cache: dict[tuple[Any, ...], tuple[Any, np.ndarray, sp.csr_matrix]] = {}

    @property
    def name(self) -> str:
        return self.collection.name

    def options(
        self,
        *,
        k: int | None = None,
        p: float | None = None,
        templates: Sequence[str] | None = None,
        aggregation: str | None = None,
        exact: bool | None = None,
        hnsw_ef: int | None = None,
        anchor_filter: AnchorFilter | None = None,
        policy: Mapping[str, Sequence[str]] | None = None,
    ) -> QueryOptions:
        """The collection's defaults, overridden by whatever is given."""
        from asif_platform.platform import _check_query_defaults

        collection = self.collection
        options = QueryOptions(
            k=collection.default_k if k is None else k,
            p=collection.default_p if p is None else p,
            templates=tuple(collection.templates if templates is None else templates),
            aggregation=aggregation or collection.template_aggregation,
            exact=collection.exact_search if exact is None else exact,
            hnsw_ef=collection.hnsw_ef if hnsw_ef is None else hnsw_ef,
            anchor_filter=anchor_filter,
            policy=policy,
        )
        _check_query_defaults(options.k, options.p, options.templates, options.aggregation,
                              options.hnsw_ef)
        return options

    # Encoding

    def encode_images(self, images: Sequence[Image.Image], **kwargs: Any) -> np.ndarray:
        """(n, image_dim) unit vectors of the images."""
        return self.image_encoder.encode(images, **kwargs)

    # Retrieval

    def image_results(
        self,
        image_vectors: np.ndarray,
        options: QueryOptions,
        limit: int | None = None,
        live: _LiveState | None = None,
    ) -> list[SearchResult]:
        """Top anchors of each image by image-image similarity."""
        limit = limit or options.k
        live = live or self._live()
        return self.platform.store.search(
            self.name,
            "image",
            image_vectors,
            limit,
            exact=options.exact,
            hnsw_ef=options.ef_for(limit),
            anchor_filter=self._filter(options, live),
            oversampling=options.oversampling,
        )

    def text_results(
        self,
        labels: Sequence[str],
        options: QueryOptions,
        limit: int | None = None,
        live: _LiveState | None = None,
    ) -> list[SearchResult]:
        """Top anchors of each candidate prompt, cached per collection revision.

        Returns one result per (label, template) in label-major order, or one per
        label with the ``"embedding"`` aggregation.
        """
        if not labels:
            raise ConfigError("at least one label is needed")
        limit = limit or options.k
        live = live or self._live()
        anchor_filter = self._filter(options, live)
        key = (
            live.revision,
            live.next_expiry,
            _filter_key(replace(anchor_filter, expired_at=None)),
            tuple(labels),
            options.templates,
            options.aggregation == "embedding",
            limit,
            options.exact,
            options.ef_for(limit),
            options.oversampling,
        )
        cached = self._text_cache.get(key)
        if cached is None:
            cached = self._disk_cache.load(key)
            if cached is not None:
                self._remember(key, cached)
        if cached is not None:
            return cached

        prompts = [template.format(label) for label in labels for template in options.templates]
        vectors = self.text_encoder.encode(prompts)  # (L*T, text_dim)
        if options.aggregation == "embedding":
            vectors = vectors.reshape(len(labels), len(options.templates), -1).mean(axis=1)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        results = self.platform.store.search(
            self.name,
            "text",
            vectors,
            limit,
            exact=options.exact,
            hnsw_ef=options.ef_for(limit),
            anchor_filter=anchor_filter,
            oversampling=options.oversampling,
        )
        self.text_queries += len(vectors)
        self._remember(key, results)
        self._disk_cache.save(key, results)
        return results

    def _remember(self, key: tuple[Any, ...], results: list[SearchResult]) -> None:
        if len(self._text_cache) > 64:
            self._text_cache.clear()
        self._text_cache[key] = results

    # Scoring

    def scores(
        self,
        image_results: Sequence[SearchResult],
        text_results: Sequence[SearchResult],
        n_labels: int,
        options: QueryOptions,
    ) -> np.ndarray:
        """(n_images, n_labels) ASIF scores from the two sides' search results.

        The text side's relative vectors are built once per cached result set, on
        the anchors it touches; image entries outside them cannot overlap and drop.
        """
        vocabulary, text_columns = self._text_relative(text_results, options)
        image_relative = relative_matrix(
            image_results, vocabulary, options.k, options.p, restrict=True
        )
        per_prompt = (image_relative @ text_columns).toarray()  # (n_images, n_prompts)
        if options.aggregation == "embedding":
            return per_prompt
        per_template = per_prompt.reshape(len(image_results), n_labels, -1)
        if options.aggregation == "max":
            return per_template.max(axis=2)
        return per_template.mean(axis=2)

    def _text_relative(
        self, text_results: Sequence[SearchResult], options: QueryOptions
    ) -> tuple[np.ndarray, sp.csr_matrix]:
        """(vocabulary, (n_columns, n_prompts) relative vectors) of a text side,
        transposed once here rather than in every product."""
        key = (id(text_results), options.k, options.p)
        cached = self._relative_cache.get(key)
        if cached is not None and cached[0] is text_results:
            return cached[1], cached[2]
        vocabulary = anchor_vocabulary(text_results)
        matrix = relative_matrix(text_results, vocabulary, options.k, options.p).T.tocsr()
        if len(self._relative_cache) > 16:
            self._relative_cache.clear()
        # The results object is kept in the entry, so its id cannot be reused.
        self._relative_cache[key] = (text_results, vocabulary, matrix)
        return vocabulary, matrix

    def classify_vectors(
        self, image_vectors: np.ndarray, labels: Sequence[str], options: QueryOptions
    ) -> np.ndarray:
        """(n_images, n_labels) scores for already-encoded images."""
        live = self._live()  # one catalog round trip for both sides
        text = self.text_results(labels, options, live=live)
        image = self.image_results(image_vectors, options, live=live)
        return self.scores(image, text, len(labels), options)

    def explain_vector(
        self,
        image_vector: np.ndarray,
        labels: Sequence[str],
        options: QueryOptions,
        *,
        top: int = 10,
    ) -> list[Explanation]:
        """Per label, the anchor pairs whose overlap makes up the image's score.

        Args:
            image_vector: (image_dim,) unit vector of the query image.
            labels: Labels to explain, in the order to report them.
            options: Query options.
            top: Contributions listed per label. Defaults to 10.

        Returns:
            One Explanation per label.
        """
        image = self.image_results(image_vector[None, :], options)
        text = self.text_results(labels, options)
        vocabulary = anchor_vocabulary(image, text)
        image_relative = relative_matrix(image, vocabulary, options.k, options.p)
        text_relative = relative_matrix(text, vocabulary, options.k, options.p)
        per_label = len(text) // len(labels)

        image_dense = image_relative.toarray()[0]  # (n_columns,)
        image_similarity = _similarity_by_column(image, vocabulary)
        text_similarity_rows = [_similarity_by_column([r], vocabulary) for r in text]
        explanations: list[tuple[str, float, list[tuple[int, float, float, float]]]] = []
        for index, label in enumerate(labels):
            rows = slice(index * per_label, (index + 1) * per_label)
            label_text = sp.csr_matrix(text_relative[rows]).toarray()  # (T, n_columns)
            contributions = image_dense[None, :] * label_text  # (T, n_columns)
            if options.aggregation == "max":
                best = int(contributions.sum(axis=1).argmax())
                weights = contributions[best]
            else:
                weights = contributions.mean(axis=0)
            score = float(weights.sum())
            order = np.argsort(-weights)[:top]
            text_similarity = np.mean(
                [text_similarity_rows[r] for r in range(rows.start, rows.stop)], axis=0
            )
            explanations.append(
                (
                    label,
                    score,
                    [
                        (
                            int(vocabulary[column]),
                            float(weights[column]),
                            float(image_similarity[column]),
                            float(text_similarity[column]),
                        )
                        for column in order
                        if weights[column] > 0
                    ],
                )
            )
        anchors = self._anchors({a for _, _, items in explanations for a, *_ in items})
        return [
            Explanation(
                label=label,
                score=score,
                contributions=[
                    Contribution(
                        anchor_id=anchor,
                        weight=weight,
                        share=weight / score if score > 0 else 0.0,
                        image_similarity=image_sim,
                        text_similarity=text_sim,
                        caption=anchors[anchor].caption if anchor in anchors else "",
                        image_ref=anchors[anchor].image_ref if anchor in anchors else "",
                        source_dataset=(
                            anchors[anchor].source_dataset if anchor in anchors else ""
                        ),
                        source_record_id=(
                            anchors[anchor].source_record_id if anchor in anchors else ""
                        ),
                    )
                    for anchor, weight, image_sim, text_sim in items
                ],
            )
            for label, score, items in explanations
        ]

    # Catalog helpers

    def _live(self) -> _LiveState:
        """What may have changed since the engine was made: anchors, policy, expiries."""
        now = utcnow()
        with self.platform.catalog.session() as session:
            revision, policy = session.execute(
                select(Collection.revision, Collection.policy)
                .where(Collection.id == self.collection.id)
            ).one()
            # Expiries only change with the revision; scan for the next one only when
            # the revision moved or the remembered one has passed (a scan is O(anchors)).
            if self._expiry is None or self._expiry[0] != revision or (
                self._expiry[1] is not None and _aware(self._expiry[1]) <= now
            ):
                next_expiry = session.scalar(
                    select(func.min(Anchor.consent_expires_at)).where(
                        Anchor.collection_id == self.collection.id,
                        Anchor.consent_expires_at > now,
                    )
                )
                self._expiry = (int(revision), next_expiry)
        return _LiveState(
            int(revision), dict(policy or {}), now.timestamp(), self._expiry[1]
        )

    @staticmethod
    def _filter(options: QueryOptions, live: _LiveState) -> AnchorFilter:
        """The options' filter plus the consent and license policy, as of now."""
        extra = options.policy or {}
        consent = set(ALWAYS_EXCLUDED_CONSENT)
        classes: set[str] = set()
        for policy in (live.policy, extra):
            consent.update(policy.get("exclude_consent", ()))
            classes.update(policy.get("exclude_license_classes", ()))
        must_not: dict[str, list[str]] = {"consent_status": sorted(consent)}
        if classes:
            must_not["license_class"] = sorted(classes)
        policy_filter = AnchorFilter(must_not_match=must_not, expired_at=live.now)
        return policy_filter.merged(options.anchor_filter)

    def _anchors(self, ids: set[int]) -> dict[int, Anchor]:
        if not ids:
            return {}
        with self.platform.catalog.session() as session:
            rows = session.scalars(
                select(Anchor).where(
                    Anchor.collection_id == self.collection.id, Anchor.id.in_(list(ids))
                )
            ).all()
        return {row.id: row for row in rows}


def _aware(moment: datetime) -> datetime:
    """SQLite returns naive datetimes; the catalog stores UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _similarity_by_column(results: Sequence[SearchResult], vocabulary: np.ndarray) -> np.ndarray:
    dense = np.zeros(len(vocabulary), dtype=np.float64)
    for result in results:
        dense[np.searchsorted(vocabulary, result.ids)] = result.scores
    return dense


@dataclass(frozen=True)
class _LiveState:
    revision: int
    policy: dict[str, Any]
    now: float
    # The next consent expiry after now: text-side results cached before it stay valid.
    next_expiry: Any


def _filter_key(anchor_filter: AnchorFilter | None) -> Any:
    if anchor_filter is None or anchor_filter.is_empty():
        return None
    return (
        tuple(sorted((k, tuple(v)) for k, v in anchor_filter.must_match.items())),
        tuple(sorted((k, tuple(v)) for k, v in anchor_filter.must_not_match.items())),
        tuple(sorted(anchor_filter.exclude_ids)),
        anchor_filter.expired_at,
    )
