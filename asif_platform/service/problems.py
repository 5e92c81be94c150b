"""Errors as RFC 9457 problem details (``application/problem+json``) with stable codes.

Every error response carries ``code``, one of :data:`CODES`; clients branch on it,
never on ``detail``, whose wording may change. Domain errors map through
:func:`problem_for`, from the most specific class of the AsifError tree up; server
faults (5xx) never echo their message, which may hold SQL or payload text.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from asif_platform.errors import (
    AlreadyExists,
    AnchorStoreError,
    AsifError,
    CatalogError,
    ConfigError,
    ConsentError,
    EncoderError,
    IngestError,
    NotFound,
    PermissionDenied,
    SchemaMismatch,
)

__all__ = [
    "CODES",
    "PROBLEM_MEDIA_TYPE",
    "Problem",
    "ServiceProblem",
    "install_handlers",
    "problem_for",
    "problem_responses",
]

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"

# Every code the service emits, with its HTTP status and title.
CODES: dict[str, tuple[int, str]] = {
    "unauthenticated": (401, "No API key was given"),
    "invalid_key": (401, "The API key is unknown, malformed or revoked"),
    "forbidden": (403, "The principal's role does not allow this"),
    "path_outside_root": (403, "The path is outside the service's data root"),
    "server_paths_disabled": (403, "This service accepts no server-side paths"),
    "not_found": (404, "No such resource, or none visible to the principal"),
    "method_not_allowed": (405, "The method is not allowed on this resource"),
    "schema_mismatch": (409, "The stored vectors differ from the collection's schema"),
    "consent_conflict": (409, "The operation is not allowed for these pairs"),
    "already_exists": (409, "A resource with that name already exists"),
    "payload_too_large": (413, "The request body is larger than the service accepts"),
    "unsupported_media_type": (415, "The request body has an unsupported media type"),
    "validation_failed": (422, "The request does not match the API schema"),
    "invalid_argument": (422, "An argument is invalid"),
    "invalid_image_reference": (422, "An image reference names no uploaded file"),
    "malformed_upload": (422, "An uploaded file cannot be read"),
    "unreadable_input": (422, "An input file or record cannot be read"),
    "unencodable_input": (422, "An input cannot be encoded"),
    "internal_error": (500, "The service failed"),
    "catalog_unavailable": (503, "The catalog database failed"),
    "store_unavailable": (503, "The vector store failed"),
}

# Most specific first: the first class an error is an instance of decides.
_DOMAIN: list[tuple[type[AsifError], str]] = [
    (SchemaMismatch, "schema_mismatch"),
    (AnchorStoreError, "store_unavailable"),
    (CatalogError, "catalog_unavailable"),
    (PermissionDenied, "forbidden"),
    (NotFound, "not_found"),
    (ConsentError, "consent_conflict"),
    (IngestError, "unreadable_input"),
    (EncoderError, "unencodable_input"),
    (AlreadyExists, "already_exists"),
    (ConfigError, "invalid_argument"),
]


class Problem(BaseModel):
    """An error response (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ServiceProblem(Exception):
    """An error the service itself raises, with one of :data:`CODES`."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        if code not in CODES:
            raise ValueError(f"unknown problem code {code!r}")
        self.code = code
        self.detail = detail


def problem_for(error: AsifError) -> str:
    """The code of a domain error."""
    for cls, code in _DOMAIN:
        if isinstance(error, cls):
            return code
    return "internal_error"


def _response(
    request: Request,
    code: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    status, title = CODES[code]
    body = Problem(
        type=f"urn:asif:problem:{code}",
        title=title,
        status=status,
        detail=detail,
        code=code,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _server_fault(request: Request, code: str, error: BaseException) -> JSONResponse:
    # The message may quote SQL parameters or payloads: log its class, show an id.
    incident = uuid.uuid4().hex[:12]
    logger.error(
        "%s %s failed with %s (incident %s)",
        request.method,
        request.url.path,
        type(error).__name__,
        incident,
    )
    return _response(request, code, f"the service failed; incident {incident}")


def install_handlers(app: FastAPI) -> None:
    """Answer every error, expected or not, as problem+json."""

    @app.exception_handler(ServiceProblem)
    async def _service(request: Request, error: ServiceProblem) -> JSONResponse:
        headers = (
            {"WWW-Authenticate": "Bearer"} if CODES[error.code][0] == 401 else None
        )
        return _response(request, error.code, error.detail, headers=headers)

    @app.exception_handler(AsifError)
    async def _domain(request: Request, error: AsifError) -> JSONResponse:
        code = problem_for(error)
        if isinstance(error, CatalogError) and isinstance(error.__cause__, DataError):
            # The database refused a value the request carried (too long, out of range).
            return _response(
                request,
                "invalid_argument",
                "a value of the request cannot be stored in the catalog",
            )
        if CODES[code][0] >= 500:
            return _server_fault(request, code, error)
        return _response(request, code, str(error))

    @app.exception_handler(RequestValidationError)
    async def _validation(
        request: Request, error: RequestValidationError
    ) -> JSONResponse:
        errors = [
            {
                "loc": [str(part) for part in item.get("loc", ())],
                "msg": str(item.get("msg", "")),
                "type": str(item.get("type", "")),
            }
            for item in error.errors()
        ]
        return _response(
            request,
            "validation_failed",
            f"{len(errors)} field(s) do not match the API schema",
            errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
            401: "unauthenticated",
            403: "forbidden",
        }.get(error.status_code, "validation_failed")
        if error.status_code >= 500:
            return _server_fault(request, "internal_error", error)
        return _response(request, code, str(error.detail))

    @app.middleware("http")
    async def _unexpected(request: Request, call_next: Any) -> Any:
        # Not an exception_handler(Exception): Starlette re-raises after calling that
        # one, and the server then logs a traceback, which ends with the message.
        try:
            return await call_next(request)
        except Exception as error:
            return _server_fault(request, "internal_error", error)


def problem_responses(*codes: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given codes (grouped by status)."""
    found: dict[int | str, dict[str, Any]] = {}
    for code in (
        *codes,
        "validation_failed",
        "unauthenticated",
        "invalid_key",
        "payload_too_large",
        "internal_error",
    ):
        status, _ = CODES[code]
        entry = found.setdefault(
            status,
            {
                "description": "",
                "content": {
                    PROBLEM_MEDIA_TYPE: {
                        "schema": {"$ref": "#/components/schemas/Problem"}
                    }
                },
            },
        )
        entry["description"] = ", ".join(filter(None, [entry["description"], code]))
    return found
