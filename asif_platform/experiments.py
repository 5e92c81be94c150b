"""The record of every evaluation: what was measured, on which anchors, with what result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

from asif_platform.catalog import Collection, Experiment, Version
from asif_platform.errors import NotFound

if TYPE_CHECKING:
    from asif_platform.platform import Platform
    from asif_platform.query.engine import QueryOptions

__all__ = ["ExperimentInfo", "get_experiments", "list_experiments", "record_experiment"]


@dataclass(frozen=True)
class ExperimentInfo:
    id: int
    kind: str
    collection: str
    version: str | None
    image_fingerprint: str
    text_fingerprint: str
    templates: list[str]
    template_aggregation: str
    eval_set: str
    eval_set_sha256: str
    images: int
    k: int
    p: float
    top1: float
    top5: float
    results: dict[str, Any]
    seconds: float
    created_at: str

    def to_dict(self, *, full: bool = True) -> dict[str, Any]:
        data = dict(self.__dict__)
        if not full:
            data.pop("results")
        return data


def record_experiment(
    platform: Platform,
    *,
    kind: str,
    collection_name: str,
    version: str | None,
    options: QueryOptions,
    eval_set: Path,
    eval_set_sha256: str,
    images: int,
    k: int,
    p: float,
    top1: float,
    top5: float,
    results: dict[str, Any],
    seconds: float,
) -> int:
    """Store one evaluation or tuning run; returns its id."""
    collection = platform.get_collection(collection_name)
    with platform.catalog.session() as session:
        version_id = None
        if version is not None:
            version_id = session.scalar(select(Version.id).where(
                Version.collection_id == collection.id, Version.name == version))
        experiment = Experiment(
            kind=kind, collection_id=collection.id, version_id=version_id,
            image_fingerprint=collection.image_fingerprint,
            text_fingerprint=collection.text_fingerprint,
            templates=list(options.templates), template_aggregation=options.aggregation,
            eval_set=str(eval_set.resolve()), eval_set_sha256=eval_set_sha256,
            images=images, k=k, p=p, top1=top1, top5=top5, results=results,
            seconds=round(seconds, 3),
        )
        session.add(experiment)
        session.flush()
        return experiment.id


def _query(platform: Platform) -> Any:
    """Experiments on collections the principal can see (its teams', or team-less)."""
    from asif_platform.teams import visible_team_ids

    visible = visible_team_ids(platform)
    return (
        select(Experiment, Collection.name, Version.name)
        .join(Collection, Collection.id == Experiment.collection_id)
        .outerjoin(Version, Version.id == Experiment.version_id)
        .where(or_(Collection.team_id.is_(None), Collection.team_id.in_(visible)))
    )


def _info(row: Any) -> ExperimentInfo:
    experiment, collection, version = row
    return ExperimentInfo(
        id=experiment.id, kind=experiment.kind, collection=collection, version=version,
        image_fingerprint=experiment.image_fingerprint,
        text_fingerprint=experiment.text_fingerprint, templates=experiment.templates,
        template_aggregation=experiment.template_aggregation, eval_set=experiment.eval_set,
        eval_set_sha256=experiment.eval_set_sha256, images=experiment.images,
        k=experiment.k, p=experiment.p, top1=experiment.top1, top5=experiment.top5,
        results=experiment.results, seconds=experiment.seconds,
        created_at=experiment.created_at.isoformat(),
    )


def list_experiments(platform: Platform, collection_name: str | None = None) -> list[ExperimentInfo]:
    query = _query(platform).order_by(Experiment.id)
    if collection_name is not None:
        query = query.where(Collection.name == collection_name)
    with platform.catalog.session() as session:
        return [_info(row) for row in session.execute(query).all()]


def get_experiments(platform: Platform, ids: list[int]) -> list[ExperimentInfo]:
    """Experiments by id, in the order asked; an unknown id is NotFound."""
    with platform.catalog.session() as session:
        found = {row[0].id: _info(row) for row in
                 session.execute(_query(platform).where(Experiment.id.in_(ids))).all()}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"no experiment with id {missing[0]}; see `asif experiment list`")
    return [found[i] for i in ids]
