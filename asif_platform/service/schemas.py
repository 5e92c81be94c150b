"""Request and response models of the HTTP API; the OpenAPI schema is made from them.

Anchor ids are 63-bit integers and travel as decimal strings, as in the CLI's JSON,
because JavaScript numbers lose precision past 2**53.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from asif_platform.catalog import unstorable
from asif_platform.ingest.readers import FORMATS
from asif_platform.platform import MAX_HNSW_EF_CONSTRUCT, MAX_HNSW_M, MAX_SEARCH_DEPTH
from asif_platform.store import CollectionSchema

__all__ = [
    "has_unstorable_text",
    "AuditEntryOut",
    "ChainOut",
    "ClassifyOut",
    "CollectionCreate",
    "CollectionOut",
    "ConsentChangeIn",
    "ConsentChangeOut",
    "DeletionIn",
    "IngestPathIn",
    "PolicyIn",
    "VersionCreate",
]

Name = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
AnchorIdText = Field(pattern=r"^[0-9]{1,19}$")
ConsentStatus = Literal["granted", "revoked", "unknown", "expired"]
ConsentBasis = Literal["license", "explicit", "other"]
LicenseClass = Literal["commercial", "non-commercial", "unknown"]
Aggregation = Literal["mean", "max", "embedding"]
# Catalog row ids are 32-bit on PostgreSQL; larger numbers can name nothing.
RowId = Annotated[int, Field(ge=1, le=2**31 - 1)]


def has_unstorable_text(value: Any) -> bool:
    """Whether a string anywhere in ``value`` holds a NUL character or a lone surrogate.

    The catalog cannot store either, and no name, caption or id needs them.
    """
    if isinstance(value, str):
        return unstorable(value) is not None
    if isinstance(value, dict):
        return any(has_unstorable_text(k) or has_unstorable_text(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_unstorable_text(item) for item in value)
    return False


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        if has_unstorable_text(data):
            raise ValueError("text must be valid Unicode without NUL characters")
        return data


class PolicyIn(_Strict):
    """Consent states and license classes queries exclude (revoked and expired always)."""

    exclude_consent: list[ConsentStatus] = Field(default_factory=list, max_length=4)
    exclude_license_classes: list[LicenseClass] = Field(
        default_factory=list, max_length=3
    )


class CollectionCreate(_Strict):
    """A new collection with the service's encoders."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    team: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    k: int = Field(default=800, ge=1, le=MAX_SEARCH_DEPTH, strict=True)
    p: float = Field(default=8.0, gt=0, le=1000, allow_inf_nan=False, strict=True)
    templates: list[str] = Field(
        default_factory=lambda: ["a photo of a {}."], min_length=1, max_length=32
    )
    template_aggregation: Aggregation = "mean"
    policy: PolicyIn = Field(default_factory=PolicyIn)
    # Search: exact by default; the graph and quantization are fixed once created.
    exact_search: bool = Field(default=True, strict=True)
    hnsw_ef: int | None = Field(default=None, ge=1, le=MAX_SEARCH_DEPTH, strict=True)
    hnsw_m: int = Field(default=CollectionSchema.hnsw_m, ge=4, le=MAX_HNSW_M, strict=True)
    hnsw_ef_construct: int = Field(
        default=CollectionSchema.hnsw_ef_construct, ge=4, le=MAX_HNSW_EF_CONSTRUCT, strict=True
    )
    quantization: Literal["int8", "none"] | None = None


class QueryDefaultsIn(_Strict):
    """New query defaults of a collection; what is left out stays as it is."""

    k: int | None = Field(default=None, ge=1, le=MAX_SEARCH_DEPTH, strict=True)
    p: float | None = Field(default=None, gt=0, le=1000, allow_inf_nan=False, strict=True)
    templates: list[str] | None = Field(default=None, min_length=1, max_length=32)
    template_aggregation: Aggregation | None = None
    exact_search: bool | None = Field(default=None, strict=True)
    hnsw_ef: int | None = Field(default=None, ge=1, le=MAX_SEARCH_DEPTH, strict=True)


class CollectionOut(BaseModel):
    name: str
    image_encoder: str
    text_encoder: str
    image_fingerprint: str
    text_fingerprint: str
    image_dim: int
    text_dim: int
    k: int
    p: float
    templates: list[str]
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


class ProvenanceIn(_Strict):
    """License, consent and source details applied to every pair of an ingest."""

    source_dataset: str | None = Field(default=None, min_length=1, max_length=200)
    source_version: str | None = Field(default=None, max_length=100)
    source_url: str | None = Field(default=None, max_length=2000)
    license: str | None = Field(default=None, max_length=200)
    creator: str | None = Field(default=None, max_length=2000)
    attribution: str | None = Field(default=None, max_length=2000)
    consent: ConsentStatus = "unknown"
    consent_basis: ConsentBasis | None = None
    consent_expires: datetime | None = None
    consent_evidence: str | None = Field(default=None, max_length=2000)


class IngestPathIn(ProvenanceIn):
    """Pairs in a file or folder on the server, inside its data root."""

    path: str = Field(min_length=1, max_length=4096)
    format: Literal[FORMATS] | None = None  # type: ignore[valid-type]
    image_dir: str | None = Field(default=None, min_length=1, max_length=4096)
    split_files: list[str] = Field(default_factory=list, max_length=16)
    image_column: str = Field(default="image", min_length=1, max_length=200)
    caption_column: str = Field(default="caption", min_length=1, max_length=200)
    id_column: str | None = Field(default=None, min_length=1, max_length=200)


class IngestOut(BaseModel):
    """What one ingest run read, added and skipped (the CLI's report)."""

    collection: str
    run_id: int
    records_read: int
    pairs_added: int
    already_present: int
    previously_deleted: int
    duplicate_pairs: int
    images_encoded: int
    captions_encoded: int
    missing_images: dict[str, Any]
    corrupt_images: dict[str, Any]
    empty_captions: dict[str, Any]
    oversized_captions: dict[str, Any]
    invalid_provenance: dict[str, Any]
    unstorable_text: dict[str, Any]
    seconds: dict[str, float]


class LabelScore(BaseModel):
    label: str
    score: float


class Prediction(BaseModel):
    """One image's answer: the best label, the top labels, and which anchor pairs
    gave the best label a non-zero share of its score."""

    image: str
    label: str
    score: float
    top: list[LabelScore]
    contributors: list[str]


class ClassifyOut(BaseModel):
    collection: str
    revision: int
    k: int
    p: float
    answered_at: str
    predictions: list[Prediction]
    unreadable: list[str]


class ContributionOut(BaseModel):
    anchor_id: str
    weight: float
    share: float
    image_similarity: float
    text_similarity: float
    caption: str
    source_dataset: str
    source_record_id: str


class LabelExplanation(BaseModel):
    label: str
    score: float
    contributions: list[ContributionOut]


class ExplainOut(BaseModel):
    collection: str
    image: str
    k: int
    p: float
    labels: list[LabelExplanation]


class VersionCreate(_Strict):
    """Freeze the collection's current anchors, or those matching every filter given."""

    name: str = Name
    source_datasets: list[str] = Field(default_factory=list, max_length=100)
    ingest_runs: list[RowId] = Field(default_factory=list, max_length=1000)
    licenses: list[str] = Field(default_factory=list, max_length=100)
    consent: list[ConsentStatus] = Field(default_factory=list, max_length=4)
    ingested_after: datetime | None = None
    ingested_before: datetime | None = None


class VersionOut(BaseModel):
    collection: str
    name: str
    anchors: int
    manifest_sha256: str
    status: str
    selector: dict[str, Any]
    created_by: str
    created_at: str
    by_source: dict[str, int]
    redactions: dict[str, int]


class ConsentChangeIn(_Strict):
    """Set the consent of the pairs matching any selector."""

    status: ConsentStatus
    anchor_ids: list[str] = Field(default_factory=list, max_length=10_000)
    source_record_ids: list[str] = Field(default_factory=list, max_length=10_000)
    source_datasets: list[str] = Field(default_factory=list, max_length=100)
    image_sha256s: list[str] = Field(default_factory=list, max_length=10_000)
    basis: ConsentBasis | None = None
    expires_at: datetime | None = None
    evidence: str | None = Field(default=None, max_length=2000)


class ConsentChangeOut(BaseModel):
    collection: str
    status: str
    pairs: int
    sample_ids: list[str]


class DeletionIn(_Strict):
    """A request to delete the pairs matching any selector (nothing is deleted yet)."""

    legal_basis: str = Field(min_length=1, max_length=100)
    anchor_ids: list[str] = Field(default_factory=list, max_length=10_000)
    source_record_ids: list[str] = Field(default_factory=list, max_length=10_000)
    source_datasets: list[str] = Field(default_factory=list, max_length=100)
    creators: list[str] = Field(default_factory=list, max_length=100)
    licenses: list[str] = Field(default_factory=list, max_length=100)
    caption_contains: list[str] = Field(default_factory=list, max_length=100)
    image_sha256s: list[str] = Field(default_factory=list, max_length=10_000)
    deadline: datetime | None = None
    requester: str | None = Field(default=None, max_length=2000)


class DeletionPreviewOut(BaseModel):
    request: int
    collection: str
    status: str
    pairs: int
    by_source: dict[str, int]
    by_version: dict[str, int]
    anchor_ids: list[str]


class DeletionStatusOut(BaseModel):
    request: int
    collection: str
    status: str
    legal_basis: str
    deadline: str | None
    created_at: str | None
    completed_at: str | None
    tombstones: dict[str, int]
    selector_sha256: str


class ReceiptOut(BaseModel):
    """The receipt of a completed deletion request."""

    model_config = ConfigDict(extra="allow")

    request: int
    collection: str
    pairs_removed: int
    removed_ids: list[str]
    completed_at: str
    verification: dict[str, Any]
    versions_redacted: dict[str, int]
    audit_entries_sha256: list[str]


class AuditEntryOut(BaseModel):
    id: int
    at: str
    principal: str
    action: str
    target: str
    outcome: str
    details: dict[str, Any]
    entry_sha256: str


class ChainOut(BaseModel):
    entries: int
    ok: bool
    first_broken: int | None
    reason: str


class WhoAmIOut(BaseModel):
    principal: str
    teams: dict[str, str | None]
