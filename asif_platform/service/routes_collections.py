"""Routes for collections, ingest, classify and explain."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, File, Form, Request, UploadFile
from PIL import Image

from asif_platform.catalog import utcnow
from asif_platform.encoders.preprocessing import load_image
from asif_platform.errors import EncoderError
from asif_platform.ingest.pipeline import MAX_CAPTION_CHARS
from asif_platform.ingest.pipeline import ingest as run_ingest
from asif_platform.ingest.readers import read_pairs
from asif_platform.ingest.records import PairRecord
from asif_platform.platform import Platform
from asif_platform.provenance import Provenance
from asif_platform.query.engine import QueryEngine, QueryOptions
from asif_platform.query.relative import anchor_vocabulary, relative_matrix
from asif_platform.service.app import Acting, resolve_inside, state_of
from asif_platform.service.problems import ServiceProblem, problem_responses
from asif_platform.service.schemas import (
    ClassifyOut,
    CollectionCreate,
    CollectionOut,
    ExplainOut,
    IngestOut,
    IngestPathIn,
    PolicyIn,
    ProvenanceIn,
    QueryDefaultsIn,
    has_unstorable_text,
)
from asif_platform.versions import require_ready

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter(tags=["collections"])

COLLECTION = Annotated[str, "collection name"]
_MAX_LABELS = 1000
_MAX_PAIRS = 10_000


# Collections


@router.get(
    "/collections",
    response_model=list[CollectionOut],
    summary="Collections visible to the principal",
    responses=problem_responses(),
)
def list_collections(platform: Platform = Acting) -> list[dict[str, Any]]:
    return [info.to_dict() for info in platform.list_collections()]


@router.post(
    "/collections",
    response_model=CollectionOut,
    status_code=201,
    summary="Create a collection with the service's encoders",
    responses=problem_responses(
        "forbidden",
        "not_found",
        "already_exists",
        "invalid_argument",
        "store_unavailable",
        "catalog_unavailable",
    ),
)
def create_collection(
    request: Request, body: CollectionCreate, platform: Platform = Acting
) -> dict[str, Any]:
    state = state_of(request)
    with state.exclusive():
        info = platform.create_collection(
            body.name,
            k=body.k,
            p=body.p,
            templates=body.templates,
            template_aggregation=body.template_aggregation,
            exact_search=body.exact_search,
            hnsw_ef=body.hnsw_ef,
            hnsw_m=body.hnsw_m,
            hnsw_ef_construct=body.hnsw_ef_construct,
            quantization=body.quantization,
            team=body.team,
            policy=body.policy.model_dump(exclude_defaults=True),
        )
    return info.to_dict()


@router.get(
    "/collections/{name}",
    response_model=CollectionOut,
    summary="One collection and its anchor count",
    responses=problem_responses("not_found", "forbidden"),
)
def get_collection(name: COLLECTION, platform: Platform = Acting) -> dict[str, Any]:
    return platform.describe_collection(name).to_dict()


@router.patch(
    "/collections/{name}",
    response_model=CollectionOut,
    summary="Change the collection's query defaults: k, p, templates, search (editors)",
    responses=problem_responses("not_found", "forbidden", "invalid_argument"),
)
def update_query_defaults(
    request: Request, name: COLLECTION, body: QueryDefaultsIn, platform: Platform = Acting
) -> dict[str, Any]:
    with state_of(request).exclusive():
        return platform.update_collection_defaults(name, **body.model_dump()).to_dict()


@router.put(
    "/collections/{name}/policy",
    response_model=CollectionOut,
    summary="Replace the collection's query policy (owners)",
    responses=problem_responses("not_found", "forbidden", "invalid_argument"),
)
def set_policy(
    request: Request, name: COLLECTION, body: PolicyIn, platform: Platform = Acting
) -> dict[str, Any]:
    # Under the lock: a query must not see one policy on one side, another on the other.
    with state_of(request).exclusive():
        return platform.set_policy(name, body.model_dump()).to_dict()


# Ingest


def _provenance(body: ProvenanceIn) -> Provenance:
    return Provenance(
        source_version=body.source_version,
        source_url=body.source_url,
        license=body.license,
        creator=body.creator,
        attribution=body.attribution,
        consent_status=body.consent,
        consent_basis=body.consent_basis,
        consent_expires_at=body.consent_expires,
        consent_evidence=body.consent_evidence,
    )


@router.post(
    "/collections/{name}/ingest/path",
    response_model=IngestOut,
    summary="Ingest pairs from a file or folder inside the data root (editors)",
    responses=problem_responses(
        "not_found",
        "forbidden",
        "path_outside_root",
        "server_paths_disabled",
        "unreadable_input",
        "invalid_argument",
    ),
)
def ingest_path(
    request: Request, name: COLLECTION, body: IngestPathIn, platform: Platform = Acting
) -> dict[str, Any]:
    state = state_of(request)
    root = state.settings.service_data_root
    platform.get_collection(name, "write")  # refuse before touching any path
    source = resolve_inside(root, body.path)
    options: dict[str, Any] = {}
    if body.image_dir is not None:
        options["image_dir"] = resolve_inside(root, body.image_dir)
    if body.split_files:
        options["split_files"] = [
            resolve_inside(root, split) for split in body.split_files
        ]
    if body.source_dataset:
        options["source_dataset"] = body.source_dataset
    if body.format in ("csv", "jsonl") or (
        body.format is None and source.suffix.lower() in (".csv", ".jsonl", ".ndjson")
    ):
        options.update(
            image_column=body.image_column,
            caption_column=body.caption_column,
            id_column=body.id_column,
        )
    provenance = _provenance(body)

    records = read_pairs(source, format=body.format, **options)
    for record in records:
        # An image reference inside a source file must not leave the root either.
        resolve_inside(root, record.image)
    with state.exclusive():
        report = run_ingest(
            platform,
            name,
            records,
            source=str(source),
            provenance=provenance,
            progress=False,
        )
    return report.to_dict()


def _refuse_unstorable(*values: Any) -> None:
    if has_unstorable_text(list(values)):
        raise ServiceProblem(
            "invalid_argument", "text must be valid Unicode without NUL characters"
        )


def _upload_name(upload: UploadFile) -> str:
    name = upload.filename or ""
    if not name or "/" in name or "\\" in name or name in (".", "..") or "\0" in name:
        raise ServiceProblem(
            "invalid_image_reference",
            f"uploaded file name {name!r} must be a plain file name",
        )
    return name


def _pairs(text: str) -> list[dict[str, Any]]:
    try:
        pairs = json.loads(text)
    except json.JSONDecodeError as error:
        raise ServiceProblem(
            "malformed_upload", f"pairs is not JSON: {error.msg}"
        ) from None
    if not isinstance(pairs, list) or not all(isinstance(p, dict) for p in pairs):
        raise ServiceProblem(
            "malformed_upload",
            "pairs must be a JSON array of objects with image and caption",
        )
    if len(pairs) > _MAX_PAIRS:
        raise ServiceProblem(
            "malformed_upload", f"at most {_MAX_PAIRS} pairs per upload"
        )
    for index, pair in enumerate(pairs):
        if not isinstance(pair.get("image"), str) or not isinstance(
            pair.get("caption"), str
        ):
            raise ServiceProblem(
                "malformed_upload",
                f"pair {index} needs string fields image and caption",
            )
        if "id" in pair and not isinstance(pair["id"], (str, int)):
            raise ServiceProblem(
                "malformed_upload", f"pair {index}: id must be a string"
            )
        for key, value in pair.items():
            if isinstance(value, (list, dict)):
                raise ServiceProblem(
                    "malformed_upload", f"pair {index}: {key} must be a string"
                )
    return pairs



def _store_uploads(
    folder: Path, wanted: Sequence[dict[str, Any]], by_name: dict[str, UploadFile]
) -> dict[str, Path]:
    """Write the uploaded images the pairs use, named by their sha256: the same image
    uploaded twice is stored once."""
    folder.mkdir(parents=True, exist_ok=True)
    stored: dict[str, Path] = {}
    for upload_name in {p["image"] for p in wanted}:
        data = by_name[upload_name].file.read()
        path = folder / hashlib.sha256(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
        stored[upload_name] = path
    return stored


@router.post(
    "/collections/{name}/ingest/upload",
    response_model=IngestOut,
    summary="Ingest uploaded images and a JSON array of their captions (editors)",
    responses=problem_responses(
        "not_found",
        "forbidden",
        "invalid_image_reference",
        "malformed_upload",
        "invalid_argument",
    ),
)
def ingest_upload(
    request: Request,
    name: COLLECTION,
    images: Annotated[list[UploadFile], File(description="The image files.")],
    pairs: Annotated[
        str,
        Form(
            description='JSON array: [{"image": "<uploaded file '
            'name>", "caption": "...", "id": "..."}]; '
            "provenance fields per pair override the "
            "form's."
        ),
    ],
    source_dataset: Annotated[str, Form(min_length=1, max_length=200)] = "upload",
    license: Annotated[str | None, Form(max_length=200)] = None,
    creator: Annotated[str | None, Form(max_length=2000)] = None,
    attribution: Annotated[str | None, Form(max_length=2000)] = None,
    source_url: Annotated[str | None, Form(max_length=2000)] = None,
    consent: Annotated[
        str, Form(pattern="^(granted|revoked|unknown|expired)$")
    ] = "unknown",
    consent_basis: Annotated[
        str | None, Form(pattern="^(license|explicit|other)$")
    ] = None,
    platform: Platform = Acting,
) -> dict[str, Any]:
    state = state_of(request)
    platform.get_collection(name, "write")  # refuse before storing anything
    wanted = _pairs(pairs)
    _refuse_unstorable(wanted, source_dataset, license, creator, attribution, source_url)
    by_name: dict[str, UploadFile] = {}
    for upload in images:
        upload_name = _upload_name(upload)
        if upload_name in by_name:
            raise ServiceProblem(
                "invalid_image_reference",
                f"two uploaded files are named {upload_name!r}",
            )
        by_name[upload_name] = upload
    missing = sorted({p["image"] for p in wanted} - set(by_name))
    if missing:
        raise ServiceProblem(
            "invalid_image_reference",
            f"pairs name images that were not uploaded: {missing[:3]}",
        )
    provenance = Provenance(
        license=license,
        creator=creator,
        attribution=attribution,
        source_url=source_url,
        consent_status=consent,
        consent_basis=consent_basis,
    )

    with state.exclusive():  # a concurrent upload must not unlink what this one uses
        stored = _store_uploads(state.uploads, wanted, by_name)
        records = [
            PairRecord(
                stored[pair["image"]],
                pair["caption"][: MAX_CAPTION_CHARS + 1],
                source_dataset,
                str(pair.get("id", f"{pair['image']}#{index}"))[:500],
                {k: v for k, v in pair.items() if k not in ("image", "caption", "id")},
            )
            for index, pair in enumerate(wanted)
        ]
        try:
            report = run_ingest(
                platform,
                name,
                records,
                source="upload",
                provenance=provenance,
                progress=False,
            )
        finally:  # undecodable images, refused captions, a failed ingest
            removed = state.forget_unused_uploads(platform, (p.name for p in stored.values()))
            if removed:
                logger.info("upload: %d images no pair uses were not kept", removed)
    return report.to_dict()


# Queries


def _decode(
    images: Sequence[UploadFile], paths: Sequence[str], root: Path | None
) -> tuple[list[str], list[Image.Image], list[str]]:
    names: list[str] = []
    decoded: list[Image.Image] = []
    unreadable: list[str] = []
    sources: list[tuple[str, bytes | Path]] = [
        (upload.filename or f"upload-{index}", upload.file.read())
        for index, upload in enumerate(images)
    ]
    sources += [(path, resolve_inside(root, path)) for path in paths]
    for name, source in sources:
        try:
            image = load_image(source)
        except EncoderError:
            unreadable.append(name)
            continue
        names.append(name)
        decoded.append(image)
    return names, decoded, unreadable


def _options(
    platform: Platform,
    engine: QueryEngine,
    k: int | None,
    p: float | None,
    version: str | None,
) -> QueryOptions:
    anchor_filter = require_ready(platform, engine.name, version) if version else None
    return engine.options(k=k, p=p, anchor_filter=anchor_filter)


def _labels(labels: Sequence[str]) -> list[str]:
    found = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if len(found) < 2:
        raise ServiceProblem("invalid_argument", "give at least two distinct labels")
    if len(found) > _MAX_LABELS or any(len(label) > 200 for label in found):
        raise ServiceProblem(
            "invalid_argument",
            f"at most {_MAX_LABELS} labels of at most 200 characters",
        )
    return found


def contributors(
    engine: QueryEngine,
    image_results: Sequence[Any],
    text_results: Sequence[Any],
    n_labels: int,
    options: QueryOptions,
    best: np.ndarray,
) -> list[list[str]]:
    """Per image, the ids of the anchor pairs with a non-zero share of its best label's
    score (under any of the label's templates)."""
    vocabulary = anchor_vocabulary(image_results, text_results)
    image_relative = relative_matrix(image_results, vocabulary, options.k, options.p)
    text_relative = relative_matrix(text_results, vocabulary, options.k, options.p)
    per_label = len(text_results) // n_labels  # templates per label, 1 for "embedding"
    found = []
    for row, label in enumerate(best):
        rows = text_relative[int(label) * per_label : (int(label) + 1) * per_label]
        text_columns = set(rows.indices.tolist())
        image_row = image_relative[row]
        columns = sorted(
            c
            for c, v in zip(image_row.indices, image_row.data, strict=True)
            if v > 0 and c in text_columns
        )
        found.append([str(int(vocabulary[c])) for c in columns])
    return found


@router.post(
    "/collections/{name}/classify",
    response_model=ClassifyOut,
    summary="Classify images zero-shot among labels (viewers)",
    responses=problem_responses(
        "not_found",
        "forbidden",
        "invalid_argument",
        "path_outside_root",
        "server_paths_disabled",
    ),
)
def classify(
    request: Request,
    name: COLLECTION,
    labels: Annotated[list[str], Form(description="Candidate labels (at least two).")],
    images: Annotated[list[UploadFile], File(description="Image files.")] = [],  # noqa: B006
    image_paths: Annotated[
        list[str], Form(description="Images inside the data root.")
    ] = [],  # noqa: B006
    top: Annotated[int, Form(ge=1, le=100)] = 1,
    k: Annotated[int | None, Form(ge=1, le=100_000)] = None,
    p: Annotated[float | None, Form(gt=0, le=1000)] = None,
    version: Annotated[str | None, Form(max_length=63)] = None,
    platform: Platform = Acting,
) -> dict[str, Any]:
    state = state_of(request)
    platform.get_collection(name, "read")  # refuse before decoding anything
    _refuse_unstorable(labels, version)
    candidates = _labels(labels)
    count = len(images) + len(image_paths)
    if count == 0 or count > state.settings.service_max_images:
        raise ServiceProblem(
            "invalid_argument",
            f"send 1 to {state.settings.service_max_images} "
            "images (ASIF_SERVICE_MAX_IMAGES)",
        )
    names, decoded, unreadable = _decode(
        images, image_paths, state.settings.service_data_root
    )

    with state.exclusive():
        revision = platform.get_collection(name, "read").revision
        engine = platform.engine(name)
        options = _options(platform, engine, k, p, version)
        predictions: list[dict[str, Any]] = []
        if decoded:
            vectors = engine.encode_images(decoded)  # (n_images, image_dim)
            text_results = engine.text_results(candidates, options)
            image_results = engine.image_results(vectors, options)
            scores = engine.scores(
                image_results, text_results, len(candidates), options
            )
            best = scores.argmax(axis=1)
            cited = contributors(
                engine, image_results, text_results, len(candidates), options, best
            )
            for row, image_name in enumerate(names):
                order = np.argsort(-scores[row], kind="stable")[:top]
                predictions.append(
                    {
                        "image": image_name,
                        "label": candidates[order[0]],
                        "score": float(scores[row, order[0]]),
                        "top": [
                            {"label": candidates[i], "score": float(scores[row, i])}
                            for i in order
                        ],
                        "contributors": cited[row],
                    }
                )
        answered_at = utcnow().isoformat()
    return {
        "collection": name,
        "revision": revision,
        "k": options.k,
        "p": options.p,
        "answered_at": answered_at,
        "predictions": predictions,
        "unreadable": unreadable,
    }


@router.post(
    "/collections/{name}/explain",
    response_model=ExplainOut,
    summary="The anchor pairs behind an image's score for each label (viewers)",
    responses=problem_responses(
        "not_found", "forbidden", "invalid_argument", "unencodable_input"
    ),
)
def explain(
    request: Request,
    name: COLLECTION,
    image: Annotated[UploadFile, File(description="One image file.")],
    labels: Annotated[
        list[str], Form(description="Labels to explain (first is the one asked about).")
    ],
    top: Annotated[int, Form(ge=1, le=100)] = 10,
    k: Annotated[int | None, Form(ge=1, le=100_000)] = None,
    p: Annotated[float | None, Form(gt=0, le=1000)] = None,
    version: Annotated[str | None, Form(max_length=63)] = None,
    platform: Platform = Acting,
) -> dict[str, Any]:
    state = state_of(request)
    platform.get_collection(name, "read")
    _refuse_unstorable(labels, version)
    wanted = list(dict.fromkeys(label.strip() for label in labels if label.strip()))
    if not wanted or len(wanted) > _MAX_LABELS:
        raise ServiceProblem("invalid_argument", f"give 1 to {_MAX_LABELS} labels")
    decoded = load_image(image.file.read())

    with state.exclusive():
        engine = platform.engine(name)
        options = _options(platform, engine, k, p, version)
        vector = engine.encode_images([decoded])[0]
        explanations = engine.explain_vector(vector, wanted, options, top=top)
    return {
        "collection": name,
        "image": image.filename or "upload",
        "k": options.k,
        "p": options.p,
        "labels": [
            {
                "label": e.label,
                "score": e.score,
                "contributions": [
                    {
                        "anchor_id": str(c.anchor_id),
                        "weight": c.weight,
                        "share": c.share,
                        "image_similarity": c.image_similarity,
                        "text_similarity": c.text_similarity,
                        "caption": c.caption,
                        "source_dataset": c.source_dataset,
                        "source_record_id": c.source_record_id,
                    }
                    for c in e.contributions
                ],
            }
            for e in explanations
        ],
    }
