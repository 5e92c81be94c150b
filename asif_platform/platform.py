"""The platform facade: settings, catalog, anchor store and encoders, wired once.

The CLI (and later the HTTP service) is a thin layer over this object.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

from sqlalchemy import func, select

from asif_platform import teams
from asif_platform.audit import audit
from asif_platform.catalog import Anchor, Catalog, Collection, unstorable
from asif_platform.encoders.base import Encoder, ImageEncoder, Modality, TextEncoder
from asif_platform.errors import AlreadyExists, ConfigError, EncoderError
from asif_platform.provenance import CONSENT_STATUSES, LICENSE_CLASSES
from asif_platform.settings import Settings
from asif_platform.store import AnchorStore, CollectionSchema, open_store
from asif_platform.store.base import validate_collection_name

__all__ = ["DEFAULT_TEMPLATES", "CollectionInfo", "EncoderLoader", "Platform"]

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)
TEMPLATE_AGGREGATIONS: tuple[str, ...] = ("mean", "max", "embedding")

EncoderLoader = Callable[[str, Modality], Encoder]


def load_encoder(identifier: str, modality: Modality, threads: int = 0) -> Encoder:
    """Load an encoder by identifier with the registry (cached per process)."""
    from asif_platform.encoders.registry import load_image_encoder, load_text_encoder

    if modality == "image":
        return load_image_encoder(identifier, threads=threads)
    return load_text_encoder(identifier, threads=threads)


@dataclass(frozen=True)
class CollectionInfo:
    """A collection as the catalog describes it, plus its live anchor count."""

    name: str
    image_encoder: str
    text_encoder: str
    image_fingerprint: str
    text_fingerprint: str
    image_dim: int
    text_dim: int
    k: int
    p: float
    templates: tuple[str, ...]
    template_aggregation: str
    exact_search: bool
    hnsw_ef: int | None
    hnsw_m: int | None
    hnsw_ef_construct: int | None
    quantization: str | None
    revision: int
    anchors: int
    created_at: str
    policy: dict[str, list[str]]
    team_id: int | None

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["templates"] = list(self.templates)
        return data


class Platform:
    """Everything a command needs, opened lazily from one Settings object.

    Args:
        settings: Where the data lives and which defaults apply.
        store: An anchor store to use instead of the one the settings name.
        catalog: A catalog to use instead of the one the settings name.
        encoder_loader: Loads an encoder from its identifier; tests pass a fake.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: AnchorStore | None = None,
        catalog: Catalog | None = None,
        encoder_loader: EncoderLoader | None = None,
    ) -> None:
        self.settings = settings
        if store is not None:
            self.__dict__["store"] = store
        if catalog is not None:
            self.__dict__["catalog"] = catalog
        self._encoder_loader = encoder_loader or (
            lambda identifier, modality: load_encoder(
                identifier, modality, settings.threads
            )
        )
        self._engines: dict[str, Any] = {}
        self._is_view = False

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.settings.sqlalchemy_url)

    @cached_property
    def store(self) -> AnchorStore:
        return open_store(self.settings)

    def as_principal(self, principal: str) -> Platform:
        """A view of this platform that acts as ``principal``.

        The view shares this platform's store, catalog, encoders and query engines
        (the HTTP service makes one per request); closing it closes nothing.
        """
        view = Platform(replace(self.settings, principal=principal), store=self.store,
                        catalog=self.catalog, encoder_loader=self._encoder_loader)
        view._engines = self._engines
        view._is_view = True
        return view

    def close(self) -> None:
        if self._is_view:
            return
        if "store" in self.__dict__:
            self.store.close()
        if "catalog" in self.__dict__:
            self.catalog.close()

    # Encoders

    def load_encoder(self, identifier: str, modality: Modality) -> Encoder:
        encoder = self._encoder_loader(identifier, modality)
        if encoder.spec.modality != modality:
            raise ConfigError(
                f"encoder {identifier!r} is a {encoder.spec.modality} encoder, "
                f"but an {modality} encoder is needed"
            )
        return encoder

    def encoders_for(self, collection: Collection) -> tuple[ImageEncoder, TextEncoder]:
        """The collection's encoders, checked against the fingerprints it stores."""
        pair: list[Encoder] = []
        for modality, stored, fingerprint in (
            ("image", collection.image_encoder, collection.image_fingerprint),
            ("text", collection.text_encoder, collection.text_fingerprint),
        ):
            encoder = self.load_encoder(stored["id"], modality)  # type: ignore[arg-type]
            if encoder.fingerprint != fingerprint:
                raise EncoderError(
                    f"collection {collection.name!r} was built with {modality} encoder "
                    f"{stored['id']!r} fingerprint {fingerprint[:12]}, but that encoder "
                    f"now loads with fingerprint {encoder.fingerprint[:12]}: its weights "
                    "or preprocessing changed; use a new collection for the new encoder"
                )
            pair.append(encoder)
        image_encoder, text_encoder = pair
        assert isinstance(image_encoder, ImageEncoder)
        assert isinstance(text_encoder, TextEncoder)
        return image_encoder, text_encoder

    # Collections

    def create_collection(
        self,
        name: str,
        *,
        image_encoder: str | None = None,
        text_encoder: str | None = None,
        k: int = 800,
        p: float = 8.0,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        template_aggregation: str = "mean",
        exact_search: bool = True,
        hnsw_ef: int | None = None,
        hnsw_m: int = CollectionSchema.hnsw_m,
        hnsw_ef_construct: int = CollectionSchema.hnsw_ef_construct,
        quantization: str | None = None,
        team: str | None = None,
        policy: dict[str, list[str]] | None = None,
    ) -> CollectionInfo:
        """Create a collection in the catalog and its Qdrant collection.

        Args:
            team: The owning team (the principal must be its editor or owner);
                default the principal's personal team.
            policy: Query-time consent and license policy; revoked and expired
                consent are excluded whatever it says.
            hnsw_m, hnsw_ef_construct: HNSW graph degree and build beam of both
                vectors (Qdrant keeps them; they apply when segments are indexed).
            quantization: ``"int8"`` keeps int8 copies in RAM and the float32
                originals on disk; searches rescore candidates with the originals.

        Raises:
            ConfigError: Invalid name or query defaults, or the name is taken.
            PermissionDenied: The principal may not create collections in the team.
        """
        validate_collection_name(name)
        _check_query_defaults(k, p, templates, template_aggregation, hnsw_ef)
        if quantization not in (None, "none", "int8"):
            raise ConfigError(f"quantization must be 'int8' or 'none', got {quantization!r}")
        if quantization == "none":
            quantization = None
        if not 4 <= hnsw_m <= MAX_HNSW_M:
            raise ConfigError(f"hnsw_m must be between 4 and {MAX_HNSW_M}, got {hnsw_m}")
        if not 4 <= hnsw_ef_construct <= MAX_HNSW_EF_CONSTRUCT:
            raise ConfigError(f"hnsw_ef_construct must be between 4 and "
                              f"{MAX_HNSW_EF_CONSTRUCT}, got {hnsw_ef_construct}")
        image_id = image_encoder or self.settings.image_encoder
        text_id = text_encoder or self.settings.text_encoder
        policy = check_policy(policy or {})
        owner = teams.team_id(self, team or teams.personal_team(self))
        image = self.load_encoder(image_id, "image")
        text = self.load_encoder(text_id, "text")

        with self.catalog.session() as session:
            if session.scalar(select(Collection).where(Collection.name == name)):
                raise AlreadyExists(f"collection {name!r} already exists")
            schema = CollectionSchema(
                name=name,
                image_dim=image.dim,
                text_dim=text.dim,
                hnsw_m=hnsw_m,
                hnsw_ef_construct=hnsw_ef_construct,
                quantization=quantization,  # type: ignore[arg-type]
            )
            if self.store.exists(name) and self.store.count(name) == 0:
                # Left over from a crash between the store and the catalog commit:
                # made again, so that it has the graph and quantization recorded here.
                self.store.drop(name)
            if self.store.exists(name):
                # Left over from a dropped catalog, with points: reuse it only if its
                # vectors fit (its graph and quantization stay as they were).
                self.store.check_schema(schema)
            else:
                self.store.create(schema)
            collection = Collection(
                name=name,
                image_encoder={"id": image_id, "spec": image.spec.to_dict()},
                text_encoder={"id": text_id, "spec": text.spec.to_dict()},
                image_fingerprint=image.fingerprint,
                text_fingerprint=text.fingerprint,
                image_dim=image.dim,
                text_dim=text.dim,
                default_k=k,
                default_p=p,
                templates=list(templates),
                template_aggregation=template_aggregation,
                exact_search=exact_search,
                hnsw_ef=hnsw_ef,
                hnsw_m=hnsw_m,
                hnsw_ef_construct=hnsw_ef_construct,
                quantization=quantization or "none",
                revision=0,
                policy=policy,
                team_id=owner,
            )
            session.add(collection)
        logger.info("created collection %s", name)
        audit(self, "collection.create", f"collection:{name}")
        return self.describe_collection(name)

    def get_collection(self, name: str, action: str = "read") -> Collection:
        """The catalog row of collection ``name``, if the principal may do ``action``
        (``read``, ``write`` or ``admin``) on it.

        Raises:
            NotFound: No such collection, or none visible to the principal.
            PermissionDenied: The principal's role is too low (the refusal is audited).
        """
        with self.catalog.session() as session:
            collection = session.scalar(select(Collection).where(Collection.name == name))
        if collection is None:
            raise teams.collection_not_visible(self, name, action)
        teams.authorize(self, collection, action)
        return collection

    def describe_collection(self, name: str) -> CollectionInfo:
        collection = self.get_collection(name)
        with self.catalog.session() as session:
            anchors = session.scalar(
                select(func.count()).select_from(Anchor).where(
                    Anchor.collection_id == collection.id
                )
            )
        return _info(collection, int(anchors or 0))

    def list_collections(self) -> list[CollectionInfo]:
        with self.catalog.session() as session:
            counts = dict(
                session.execute(
                    select(Anchor.collection_id, func.count()).group_by(Anchor.collection_id)
                ).all()
            )
            collections = session.scalars(select(Collection).order_by(Collection.name)).all()
        visible = teams.visible_team_ids(self)
        return [_info(c, int(counts.get(c.id, 0))) for c in collections
                if c.team_id is None or c.team_id in visible]

    def update_collection_defaults(
        self,
        name: str,
        *,
        k: int | None = None,
        p: float | None = None,
        templates: Sequence[str] | None = None,
        template_aggregation: str | None = None,
        exact_search: bool | None = None,
        hnsw_ef: int | None = None,
    ) -> CollectionInfo:
        """Change a collection's query defaults (audited); vectors are untouched.

        ``exact_search`` and ``hnsw_ef`` tune search per collection after measuring
        (``benchmarks/scale.py``); the graph itself (m, ef_construct) is fixed at
        creation.
        """
        collection = self.get_collection(name, "write")
        current = {"k": collection.default_k, "p": collection.default_p,
                   "templates": list(collection.templates),
                   "template_aggregation": collection.template_aggregation,
                   "exact_search": collection.exact_search, "hnsw_ef": collection.hnsw_ef}
        given = {"k": k, "p": p, "templates": None if templates is None else list(templates),
                 "template_aggregation": template_aggregation,
                 "exact_search": exact_search, "hnsw_ef": hnsw_ef}
        changed = {key: value for key, value in given.items()
                   if value is not None and value != current[key]}
        if not changed:
            return self.describe_collection(name)
        new = {**current, **changed}
        _check_query_defaults(new["k"], new["p"], new["templates"],
                              new["template_aggregation"], new["hnsw_ef"])
        with self.catalog.session() as session:
            row = session.get(Collection, collection.id)
            assert row is not None
            row.default_k, row.default_p = new["k"], new["p"]
            row.templates, row.template_aggregation = new["templates"], new["template_aggregation"]
            row.exact_search, row.hnsw_ef = new["exact_search"], new["hnsw_ef"]
        if "templates" in changed:  # the audit keeps no free text
            changed["templates"] = len(changed["templates"])
        audit(self, "collection.defaults", f"collection:{name}", details=changed)
        logger.info("updated query defaults of collection %s", name)
        return self.describe_collection(name)

    def set_policy(self, name: str, policy: Mapping[str, Sequence[str]]) -> CollectionInfo:
        """Replace a collection's query policy; the next query applies it (no re-ingest)."""
        checked = check_policy(policy)
        collection = self.get_collection(name, "admin")
        with self.catalog.session() as session:
            row = session.get(Collection, collection.id)
            assert row is not None
            row.policy = checked
        audit(self, "collection.policy", f"collection:{name}", details=checked)
        return self.describe_collection(name)

    def engine(self, name: str) -> Any:
        """The query engine of collection ``name``, if the principal may read it.

        Engines are kept for the process lifetime and rebuilt when the collection's
        query defaults change; the role check runs on every call.
        """
        from asif_platform.query.engine import QueryEngine

        collection = self.get_collection(name)
        engine = self._engines.get(name)
        if engine is None or _engine_key(engine.collection) != _engine_key(collection):
            self.store.check_schema(CollectionSchema(
                name=name, image_dim=collection.image_dim, text_dim=collection.text_dim))
            image_encoder, text_encoder = self.encoders_for(collection)
            engine = QueryEngine(self, collection, image_encoder, text_encoder)
            self._engines[name] = engine
        return engine


def _engine_key(collection: Collection) -> tuple[Any, ...]:
    """What an engine takes from its collection row when it is made."""
    return (collection.id, collection.image_fingerprint, collection.text_fingerprint,
            collection.default_k, collection.default_p, tuple(collection.templates),
            collection.template_aggregation, collection.exact_search, collection.hnsw_ef)


# Deeper searches than this are no longer ASIF's sparse top-k (and overflow the catalog).
MAX_SEARCH_DEPTH = 100_000
# Past these, building the graph takes far longer for no measurable recall.
MAX_HNSW_M = 128
MAX_HNSW_EF_CONSTRUCT = 4096


def _check_query_defaults(
    k: int, p: float, templates: Sequence[str], aggregation: str, hnsw_ef: int | None = None
) -> None:
    if not 1 <= k <= MAX_SEARCH_DEPTH:
        raise ConfigError(f"k must be between 1 and {MAX_SEARCH_DEPTH:,}, got {k}")
    if hnsw_ef is not None and not 1 <= hnsw_ef <= MAX_SEARCH_DEPTH:
        raise ConfigError(f"hnsw_ef must be between 1 and {MAX_SEARCH_DEPTH:,}, got {hnsw_ef}")
    if not (p > 0 and math.isfinite(p)):
        raise ConfigError(f"p must be a positive number, got {p}")
    if not templates:
        raise ConfigError("at least one prompt template is needed")
    for template in templates:
        problem = unstorable(template)
        if problem:
            raise ConfigError(f"a prompt template {problem}")
        if template.count("{}") != 1:
            raise ConfigError(
                f"prompt template {template!r} must contain exactly one '{{}}' "
                "where the label goes"
            )
    if aggregation not in TEMPLATE_AGGREGATIONS:
        raise ConfigError(
            f"template aggregation must be one of {', '.join(TEMPLATE_AGGREGATIONS)}, "
            f"got {aggregation!r}"
        )


POLICY_KEYS = {"exclude_consent": CONSENT_STATUSES, "exclude_license_classes": LICENSE_CLASSES}


def check_policy(policy: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """A validated query policy: which consent states and license classes to exclude."""
    checked: dict[str, list[str]] = {}
    for key, values in policy.items():
        allowed = POLICY_KEYS.get(key)
        if allowed is None:
            raise ConfigError(f"unknown policy key {key!r}; use {', '.join(POLICY_KEYS)}")
        unknown = [v for v in values if v not in allowed]
        if unknown:
            raise ConfigError(f"{key} takes {', '.join(allowed)}; got {unknown[0]!r}")
        checked[key] = sorted(set(values))
    return checked


def _info(collection: Collection, anchors: int) -> CollectionInfo:
    return CollectionInfo(
        name=collection.name,
        image_encoder=collection.image_encoder["id"],
        text_encoder=collection.text_encoder["id"],
        image_fingerprint=collection.image_fingerprint,
        text_fingerprint=collection.text_fingerprint,
        image_dim=collection.image_dim,
        text_dim=collection.text_dim,
        k=collection.default_k,
        p=collection.default_p,
        templates=tuple(collection.templates),
        template_aggregation=collection.template_aggregation,
        exact_search=collection.exact_search,
        hnsw_ef=collection.hnsw_ef,
        hnsw_m=collection.hnsw_m,
        hnsw_ef_construct=collection.hnsw_ef_construct,
        quantization=collection.quantization,
        revision=collection.revision,
        anchors=anchors,
        created_at=collection.created_at.isoformat(),
        policy=dict(collection.policy or {}),
        team_id=collection.team_id,
    )
