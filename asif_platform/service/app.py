"""The HTTP service: one Platform per process, one acting view per request.

Why FastAPI: the OpenAPI schema comes from the same typed pydantic models that
validate requests, so the schema clients and the fuzz tests read cannot drift from
what the server accepts; it runs on any ASGI server (uvicorn here) and plain ``def``
handlers run in a thread pool, which suits our synchronous platform code.

Concurrency: the embedded Qdrant Edge store and the encoders are not safe to call
from many threads at once, so every handler that touches them holds
:attr:`ServiceState.lock`; catalog-only reads run in parallel. One lock also gives
deletions a clean edge: an answer computed after a deletion's receipt was issued
can no longer see the deleted pairs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asif_platform import __version__
from asif_platform.apikeys import authenticate, parse_prefix
from asif_platform.audit import audit
from asif_platform.catalog import Anchor
from asif_platform.platform import EncoderLoader, Platform
from asif_platform.service.problems import (
    CODES,
    PROBLEM_MEDIA_TYPE,
    Problem,
    ServiceProblem,
    install_handlers,
)
from asif_platform.settings import Settings

__all__ = ["ServiceState", "acting_platform", "create_app", "resolve_inside"]

logger = logging.getLogger(__name__)

_bearer = HTTPBearer(auto_error=False, description="A token from `asif key create`.")
_header_key = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The same token, in a header of its own.",
)


class ServiceState:
    """What every request shares: the settings, the platform and the store lock."""

    def __init__(self, settings: Settings, platform: Platform) -> None:
        self.settings = settings
        self.platform = platform
        self.lock = threading.Lock()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the store-and-encoders lock."""
        with self.lock:
            yield

    @property
    def uploads(self) -> Path:
        return self.settings.home / "uploads"

    def forget_unused_uploads(self, platform: Platform, digests: Iterable[str]) -> int:
        """Unlink the uploaded images (named by their sha256) that no pair uses;
        returns how many were removed. Call it holding :meth:`exclusive`."""
        wanted = set(digests)
        if not wanted:
            return 0
        with platform.catalog.session() as session:
            used = set(session.scalars(
                select(Anchor.image_sha256).where(Anchor.image_sha256.in_(wanted))
            ))
        removed = 0
        for digest in wanted - used:
            path = self.uploads / digest
            if path.is_file():
                path.unlink()
                removed += 1
        return removed


def state_of(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.asif
    return state


def acting_platform(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_header_key)],
) -> Platform:
    """The platform acting as the principal of the request's API key.

    Raises:
        ServiceProblem: ``unauthenticated`` without a key, ``invalid_key`` for an
            unknown, malformed or revoked one (audited).
    """
    state = state_of(request)
    token = bearer.credentials if bearer is not None else header_key
    if not token:
        raise ServiceProblem(
            "unauthenticated",
            "send an API key as 'Authorization: Bearer <key>' or "
            "'X-API-Key: <key>'; `asif key create` makes one",
        )
    principal = authenticate(state.platform.catalog, token)
    if principal is None:
        prefix = parse_prefix(token)
        audit(
            state.platform.as_principal("unauthenticated"),
            "service.authenticate",
            f"key:{prefix or 'malformed'}",
            outcome="refused",
        )
        raise ServiceProblem(
            "invalid_key", "the API key is unknown, malformed or revoked"
        )
    return state.platform.as_principal(principal)


Acting = Depends(acting_platform)


def no_nul_in_path(request: Request) -> None:
    """Refuse NUL characters in path parameters (no stored name can hold one)."""
    if any("\x00" in str(value) for value in request.path_params.values()):
        raise ServiceProblem("invalid_argument", "path parameters must not contain NUL")


def resolve_inside(root: Path | None, reference: str | Path) -> Path:
    """``reference`` (relative to ``root``) resolved, if it stays inside ``root``.

    Symbolic links are followed before the check, and nothing is said about
    whether a path outside the root exists.

    Raises:
        ServiceProblem: ``server_paths_disabled`` without a root,
            ``path_outside_root`` for a path that leaves it.
    """
    if root is None:
        raise ServiceProblem(
            "server_paths_disabled",
            "this service has no ASIF_SERVICE_DATA_ROOT; upload the files",
        )
    base = root.resolve()
    try:
        candidate = (base / reference).resolve()
    except (OSError, ValueError, RuntimeError) as error:
        raise ServiceProblem(
            "path_outside_root", f"{str(reference)!r} is not a usable path"
        ) from error
    if not candidate.is_relative_to(base):
        raise ServiceProblem(
            "path_outside_root",
            f"{str(reference)!r} is outside the service's data root",
        )
    return candidate


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a 413 problem.

    A declared Content-Length over the limit is refused before reading; a chunked
    body is counted as it arrives and cut off once it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.limit
            except ValueError:
                too_large = False
            if too_large:
                await self._refuse(scope, send)
                return

        received = 0
        started = refused = False

        async def counted_receive() -> Message:
            # Past the limit the app is told the client left; the 413 is already sent.
            nonlocal received, started, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused = True
                    if not started:
                        started = True
                        await self._refuse(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, scope: Scope, send: Send) -> None:
        import json

        status, title = CODES["payload_too_large"]
        body = json.dumps(
            Problem(
                type="urn:asif:problem:payload_too_large",
                title=title,
                status=status,
                detail=f"the request body is over {self.limit} bytes (ASIF_SERVICE_MAX_BODY_BYTES)",
                code="payload_too_large",
                instance=scope.get("path"),
            ).model_dump(exclude_none=True)
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(
    settings: Settings,
    *,
    platform: Platform | None = None,
    encoder_loader: EncoderLoader | None = None,
) -> FastAPI:
    """The ASGI application of the HTTP service.

    Args:
        settings: Where the data lives, the data root and the request limits.
        platform: The platform to serve; default one opened from ``settings``
            (closed with the app).
        encoder_loader: Encoder loader of that default platform; tests pass a fake.
    """
    from asif_platform.service import routes_collections, routes_governance

    owned = platform is None
    served = platform or Platform(settings, encoder_loader=encoder_loader)
    served.catalog  # noqa: B018 - open it now: a catalog that needs `asif db upgrade` stops the start

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        if owned:
            served.close()

    app = FastAPI(
        title="ASIF Platform",
        version=__version__,
        description="A CLIP-like classifier made of anchor image-caption pairs, for teams. "
        "Every route but /v1/health needs an API key (`asif key create`). "
        "Errors are application/problem+json with a stable `code`.",
        lifespan=lifespan,
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
    )
    app.state.asif = ServiceState(settings, served)
    install_handlers(app)
    checks = [Depends(no_nul_in_path)]
    app.include_router(routes_collections.router, prefix="/v1", dependencies=checks)
    app.include_router(routes_governance.router, prefix="/v1", dependencies=checks)
    app.add_middleware(BodyLimit, limit=settings.service_max_body_bytes)

    @app.get("/v1/health", tags=["service"], summary="Liveness; needs no key")
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    _register_problem_schema(app)
    logger.info(
        "HTTP service ready (data root %s)",
        "set" if settings.service_data_root else "unset",
    )
    return app


def _register_problem_schema(app: FastAPI) -> None:
    """Put the Problem model into the schema's components, once, for every route."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema())
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
