# Owns the FastAPI application: its routers, error shapes, limits and lifecycle.
"""`create_app(settings)`: the service as an ASGI app.

Errors under `/v1` are RFC 9457 problem details (`api/problems.py`), FastAPI's own 404, 405,
422 and the 413 of the body limit included; everywhere else they are `{"message": ...}` (HMA's
shape) with the status, and validation errors are 422 with `message` and FastAPI's `detail`
list. Bodies over `max_request_bytes` are refused with 413 before they are read whole.
OpenAPI is at `/openapi.json`, its pages at `/docs`.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from childguard import __version__
from childguard import log as logging_setup
from childguard.errors import ChildguardError
from childguard.service import (
    hotline_tasks,  # noqa: F401 (registers the hotline's task)
    metrics,
    org_tasks,  # noqa: F401 (registers the organisations' tasks)
)
from childguard.service.access_log import AccessLog
from childguard.service.api import (
    audit,
    health,
    hma,
    jobs,
    org_actions,
    org_photos,
    orgs,
    problems,
    session,
    tasks,
    v1,
    webhooks,
)
from childguard.service.api import hotline as hotline_api
from childguard.service.api import notices as notice_api
from childguard.service.api import referrals as referral_api
from childguard.service.api import reports as report_api
from childguard.service.api import routing as routing_api
from childguard.service.api import statistics as statistics_api
from childguard.service.auth import api_routes, rule_of
from childguard.service.compat import HmaError
from childguard.service.config import Settings
from childguard.service.limits import RateLimit, RequestTimeout
from childguard.service.state import ServiceState
from childguard.service.web import (
    case_pages,
    dashboard_pages,
    host_pages,
    org_pages,
    org_register_pages,
    pages,
    report_pages,
    review_pages,
    routing_pages,
    task_pages,
)

# Routes FastAPI adds itself; they are public and have no rule of their own.
PUBLIC_BUILTIN = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413: by Content-Length up front, and by
    counting what arrives for bodies sent without one."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        path = str(scope.get("path", ""))
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(self.limit, path, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _BodyTooLarge(self.limit)
            return message

        try:
            await self.app(scope, counted, send)
        except _BodyTooLarge:
            await _too_large(self.limit, path, send)


class _BodyTooLarge(StarletteHTTPException):
    """Raised from `receive` once a body passes the limit; an HTTP error (413), so that the
    body parser passes it on as it is and the error handlers answer it in the path's shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body over {limit} bytes")


async def _too_large(limit: int, path: str, send: Send) -> None:
    response = problems.for_path(path, 413, f"request body over {limit} bytes")
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def _message_of(detail: Any) -> str:
    return detail if isinstance(detail, str) else str(detail)


def check_rules(app: FastAPI) -> None:
    """Every API route declares one rule (`owner` or `public`); ValueError naming those
    that do not."""
    missing = [
        f"{sorted(r.methods or ())} {r.path}" for r in api_routes(app.routes) if rule_of(r) is None
    ]
    if missing:
        raise ValueError(f"routes without an owner role: {', '.join(missing)}")


def create_app(settings: Settings | None = None, *, state: ServiceState | None = None) -> FastAPI:
    """The service app. `state` is made from `settings` when the app starts, unless given."""
    resolved = settings or (state.settings if state is not None else Settings.from_env())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = state or ServiceState(resolved)
        app.state.service = service
        service.start()
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="childguard",
        version=__version__,
        description="Hash, match and curate banks of signals; HMA-compatible routes.",
        lifespan=lifespan,
    )
    app.state.settings = resolved
    for router in (health.router, hma.matching, hma.hashing, hma.curation):
        app.include_router(router)
    app.include_router(v1.router)
    app.include_router(metrics.router)
    app.include_router(jobs.router)
    app.include_router(webhooks.router)
    app.include_router(session.router)
    app.include_router(pages.router)
    app.include_router(report_api.router)
    app.include_router(report_pages.router)
    app.include_router(review_pages.router)
    for router in (orgs.router, audit.router, hotline_api.router):
        app.include_router(router)
    for router in (
        routing_api.router,
        referral_api.router,
        notice_api.router,
        statistics_api.router,
        host_pages.router,
        dashboard_pages.router,
        case_pages.router,
        routing_pages.router,
    ):
        app.include_router(router)
    for router in (
        org_photos.router,
        org_register_pages.router,
        org_actions.router,
        org_pages.router,
        tasks.router,
        task_pages.router,
    ):
        app.include_router(router)

    @app.exception_handler(HmaError)
    async def _hma_error(_: Request, exc: HmaError) -> JSONResponse:
        return JSONResponse({"message": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if review_pages.wants_page(request):
            return review_pages.error_page(request, exc)
        return problems.for_path(
            request.url.path,
            exc.status_code,
            _message_of(exc.detail),
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return problems.for_path(request.url.path, 500, "internal server error")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        if problems.is_v1(request.url.path):
            return problems.from_validation(exc).response()
        errors = exc.errors()
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors
        ]
        body = {"message": "; ".join(parts) or "invalid request", "detail": _plain(errors)}
        return JSONResponse(body, status_code=422)

    check_rules(app)
    app.add_middleware(BodyLimit, limit=resolved.max_request_bytes)
    # Outermost last: the access log sees every answer, the limits' 429 and 503 included.
    app.add_middleware(RequestTimeout, seconds=resolved.request_timeout_seconds)
    app.add_middleware(
        RateLimit,
        per_key=resolved.rate_limit_per_key,
        per_client=resolved.rate_limit_per_client,
    )
    app.add_middleware(AccessLog)
    return app


def _plain(errors: Any) -> Any:
    """Validation errors as JSON-safe values (they may hold exceptions or bytes)."""
    if isinstance(errors, dict):
        return {str(k): _plain(v) for k, v in errors.items()}
    if isinstance(errors, list | tuple):
        return [_plain(v) for v in errors]
    if errors is None or isinstance(errors, str | int | float | bool):
        return errors
    return str(errors)


def app_from_env() -> FastAPI:
    """The app on settings from the environment: uvicorn's factory for `childguard serve`.
    Bad settings or a store that cannot be opened end the process with exit code 2 and the
    reason on stderr, before anything listens."""
    try:
        settings = Settings.from_env()
        logging_setup.configure(level=settings.log_level)
        state = ServiceState(settings)
        state.secret_key()  # read, or made, before anything listens
    except ChildguardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return create_app(settings, state=state)
