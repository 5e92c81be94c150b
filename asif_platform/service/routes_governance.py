"""Routes for versions, consent, deletions, the audit log and the caller's identity."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy import select

from asif_platform import teams
from asif_platform.audit import verify_chain, visible_entries
from asif_platform.catalog import AuditEntry, DeletionRequest, Tombstone
from asif_platform.consent import PairSelector, change_consent
from asif_platform.deletion import (
    DeletionSelector,
    apply_request,
    create_request,
    preview_request,
    request_status,
)
from asif_platform.errors import NotFound
from asif_platform.platform import Platform
from asif_platform.service.app import Acting, ServiceState, state_of
from asif_platform.service.problems import ServiceProblem, problem_responses
from asif_platform.service.schemas import (
    AuditEntryOut,
    ChainOut,
    ConsentChangeIn,
    ConsentChangeOut,
    DeletionIn,
    DeletionPreviewOut,
    DeletionStatusOut,
    ReceiptOut,
    VersionCreate,
    VersionOut,
    WhoAmIOut,
)
from asif_platform.versions import (
    VersionSelector,
    create_version,
    diff_versions,
    get_version,
    list_versions,
)

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()

T = TypeVar("T")
RequestId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Deletion request id.")]


def _ids(values: Sequence[str]) -> tuple[int, ...]:
    try:
        ids = tuple(int(value) for value in values)
    except ValueError:
        raise ServiceProblem(
            "invalid_argument", "anchor ids are decimal strings"
        ) from None
    if any(not 0 <= i < 2**63 for i in ids):
        raise ServiceProblem(
            "invalid_argument", "anchor ids are 63-bit non-negative integers"
        )
    return ids


@router.get(
    "/whoami",
    response_model=WhoAmIOut,
    tags=["service"],
    summary="The key's principal and its teams",
    responses=problem_responses(),
)
def whoami(platform: Platform = Acting) -> dict[str, Any]:
    return {
        "principal": platform.settings.principal,
        "teams": {team.name: team.role for team in teams.list_teams(platform)},
    }


# Versions


@router.get(
    "/collections/{name}/versions",
    response_model=list[VersionOut],
    tags=["versions"],
    summary="Frozen versions of a collection",
    responses=problem_responses("not_found", "forbidden"),
)
def versions(name: str, platform: Platform = Acting) -> list[dict[str, Any]]:
    return [info.to_dict() for info in list_versions(platform, name)]


@router.post(
    "/collections/{name}/versions",
    response_model=VersionOut,
    status_code=201,
    tags=["versions"],
    summary="Freeze the current anchors as a version (editors)",
    responses=problem_responses(
        "not_found", "forbidden", "already_exists", "invalid_argument", "store_unavailable"
    ),
)
def freeze(
    request: Request, name: str, body: VersionCreate, platform: Platform = Acting
) -> dict[str, Any]:
    selector = VersionSelector(
        source_datasets=tuple(body.source_datasets),
        ingest_runs=tuple(body.ingest_runs),
        licenses=tuple(body.licenses),
        consent=tuple(body.consent),
        ingested_after=body.ingested_after,
        ingested_before=body.ingested_before,
    )
    with state_of(request).exclusive():
        info = create_version(
            platform, name, body.name, selector, created_by=platform.settings.principal
        )
    return info.to_dict()


@router.get(
    "/collections/{name}/versions/{version}",
    response_model=VersionOut,
    tags=["versions"],
    summary="One version",
    responses=problem_responses("not_found", "forbidden"),
)
def version(name: str, version: str, platform: Platform = Acting) -> dict[str, Any]:
    return get_version(platform, name, version).to_dict()


@router.get(
    "/collections/{name}/versions/{old}/diff/{new}",
    tags=["versions"],
    summary="Anchors added and removed from one version to another",
    responses=problem_responses("not_found", "forbidden"),
)
def diff(name: str, old: str, new: str, platform: Platform = Acting) -> dict[str, Any]:
    return diff_versions(platform, name, old, new)


# Consent


@router.post(
    "/collections/{name}/consent",
    response_model=ConsentChangeOut,
    tags=["consent"],
    summary="Grant or revoke the selected pairs (editors)",
    responses=problem_responses("not_found", "forbidden", "invalid_argument"),
)
def consent(
    request: Request, name: str, body: ConsentChangeIn, platform: Platform = Acting
) -> dict[str, Any]:
    selector = PairSelector(
        anchor_ids=_ids(body.anchor_ids),
        source_record_ids=tuple(body.source_record_ids),
        source_datasets=tuple(body.source_datasets),
        image_sha256s=tuple(body.image_sha256s),
    )
    with state_of(request).exclusive():
        change = change_consent(
            platform,
            name,
            selector,
            body.status,
            basis=body.basis,
            expires_at=body.expires_at,
            evidence=body.evidence,
        )
    return change.to_dict()


# Deletions


def _visible(platform: Platform, request_id: int, call: Callable[[], T]) -> T:
    # A request on a collection the principal cannot see reads as no request at all.
    try:
        return call()
    except NotFound:
        raise NotFound(
            f"no deletion request {request_id} is visible to "
            f"{platform.settings.principal!r}"
        ) from None


@router.post(
    "/collections/{name}/deletions",
    response_model=DeletionPreviewOut,
    status_code=201,
    tags=["deletions"],
    summary="Record a deletion request and preview it (editors)",
    responses=problem_responses("not_found", "forbidden", "invalid_argument"),
)
def request_deletion(
    name: str, body: DeletionIn, platform: Platform = Acting
) -> dict[str, Any]:
    selector = DeletionSelector(
        anchor_ids=_ids(body.anchor_ids),
        source_record_ids=tuple(body.source_record_ids),
        source_datasets=tuple(body.source_datasets),
        creators=tuple(body.creators),
        licenses=tuple(body.licenses),
        caption_contains=tuple(body.caption_contains),
        image_sha256s=tuple(body.image_sha256s),
    )
    request_id = create_request(
        platform,
        name,
        selector,
        legal_basis=body.legal_basis,
        deadline=body.deadline,
        requester=body.requester,
    )
    return preview_request(platform, request_id)


@router.get(
    "/deletions/{request_id}",
    response_model=DeletionStatusOut,
    tags=["deletions"],
    summary="Where a deletion request stands (editors)",
    responses=problem_responses("not_found", "forbidden"),
)
def deletion_status(
    request_id: RequestId, platform: Platform = Acting
) -> dict[str, Any]:
    return _visible(platform, request_id, lambda: request_status(platform, request_id))


@router.get(
    "/deletions/{request_id}/preview",
    response_model=DeletionPreviewOut,
    tags=["deletions"],
    summary="What applying would remove: counts and ids",
    responses=problem_responses("not_found", "forbidden"),
)
def deletion_preview(
    request_id: RequestId, platform: Platform = Acting
) -> dict[str, Any]:
    return _visible(platform, request_id, lambda: preview_request(platform, request_id))


@router.post(
    "/deletions/{request_id}/apply",
    response_model=ReceiptOut,
    tags=["deletions"],
    summary="Delete, verify, finalize and purge; returns the receipt (editors)",
    responses=problem_responses("not_found", "forbidden", "store_unavailable"),
)
def deletion_apply(
    request: Request, request_id: RequestId, platform: Platform = Acting
) -> dict[str, Any]:
    state = state_of(request)
    with state.exclusive():
        receipt = _visible(
            platform, request_id, lambda: apply_request(platform, request_id)
        )
        _forget_uploads(state, platform, request_id)
    return receipt


@router.get(
    "/deletions/{request_id}/receipt",
    response_model=ReceiptOut,
    tags=["deletions"],
    summary="The receipt of a completed deletion request",
    responses=problem_responses("not_found", "forbidden", "invalid_argument"),
)
def deletion_receipt(
    request_id: RequestId, platform: Platform = Acting
) -> dict[str, Any]:
    status = _visible(
        platform, request_id, lambda: request_status(platform, request_id)
    )
    if status["status"] != "completed":
        raise ServiceProblem(
            "invalid_argument",
            f"request {request_id} is {status['status']}; apply it first",
        )
    with platform.catalog.session() as session:
        row = session.get(DeletionRequest, request_id)
        assert row is not None
        return dict(row.receipt)


def _forget_uploads(state: ServiceState, platform: Platform, request_id: int) -> None:
    """Unlink uploaded images that no remaining pair uses (their names are sha256s)."""
    with platform.catalog.session() as session:
        hashes = session.scalars(
            select(Tombstone.image_sha256).where(Tombstone.request_id == request_id)
        ).all()
    removed = state.forget_unused_uploads(platform, hashes)
    if removed:
        logger.info(
            "deletion request %d: %d uploaded images removed", request_id, removed
        )


# Audit


@router.get(
    "/collections/{name}/audit",
    response_model=list[AuditEntryOut],
    tags=["audit"],
    summary="The latest audit entries about a collection (owners)",
    responses=problem_responses("not_found", "forbidden"),
)
def collection_audit(
    name: str,
    last: Annotated[int, Query(ge=1, le=1000)] = 20,
    platform: Platform = Acting,
) -> list[dict[str, Any]]:
    return [_entry(e) for e in visible_entries(platform, collection=name, last=last)]


@router.get(
    "/audit",
    response_model=list[AuditEntryOut],
    tags=["audit"],
    summary="The latest entries of your own actions and of collections you own",
    responses=problem_responses(),
)
def audit_list(
    last: Annotated[int, Query(ge=1, le=1000)] = 20,
    platform: Platform = Acting,
) -> list[dict[str, Any]]:
    return [_entry(e) for e in visible_entries(platform, last=last)]


def _entry(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "principal": entry.principal,
        "action": entry.action,
        "target": entry.target,
        "outcome": entry.outcome,
        "details": entry.details,
        "entry_sha256": entry.entry_sha256,
    }


@router.get(
    "/audit/verify",
    response_model=ChainOut,
    tags=["audit"],
    summary="Check every link of the audit chain",
    responses=problem_responses(),
)
def audit_verify(platform: Platform = Acting) -> dict[str, Any]:
    check = verify_chain(platform)
    return {
        "entries": check.entries,
        "ok": check.ok,
        "first_broken": check.first_broken,
        "reason": check.reason,
    }
