# Owns the error shape of /v1: RFC 9457 problem details, and the route class that answers them.
"""RFC 9457 problem details for the `/v1` routes.

Every error under `/v1` is `application/problem+json` with `type`, `title`, `status` and
`detail`; `message` repeats `detail` (the key the HMA routes and the auth layer use), and
`errors` lists field errors where there are several. `ProblemRoute` is the route class of the
`/v1` router: it turns what a route or its dependencies raise (`Problem`, FastAPI's
`HTTPException` from the auth rule, validation errors, the library's errors) into a problem
response. What no `/v1` route answers itself (an unknown path under `/v1`, a method the path
does not take, a body over the size limit, a crash) the app's handlers answer through
`for_path`, which gives a problem under `/v1` and HMA's `{"message": ...}` elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from childguard.banks import BankExists, BankNotFound
from childguard.errors import ChildguardError, InvalidSignal
from childguard.service.state import IndexNotReady

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "tag:childguard,2026:problem/"
PREFIX = "/v1"


# An RFC 9457 problem detail, as the OpenAPI document describes it.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "message": {"type": "string", "description": "the same as detail"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


_WHEN = {
    400: "malformed request",
    401: "no key, or an unknown, expired or revoked key",
    403: "a key of another role",
    404: "no such bank",
    409: "conflict",
    413: "too many items in one request, or a body over the size limit",
    422: "invalid fields, signals or content",
    503: "the index is not ready",
}
# The error answers every /v1 route may give, for the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": when, "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}
    for status, when in _WHEN.items()
}


def type_uri(slug: str) -> str:
    """The `type` of a childguard problem: a tag URI (RFC 4151), stable, never fetched."""
    return TYPE_BASE + slug


class Problem(Exception):
    """An error answered as a problem detail: `status`, `detail`, and a `slug` naming its
    `type` (None: `about:blank`, whose title is the status phrase)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title
        self.headers = dict(headers) if headers is not None else None
        self.extra = extra

    def body(self) -> dict[str, Any]:
        phrase = HTTPStatus(self.status).phrase
        out: dict[str, Any] = {
            "type": type_uri(self.slug) if self.slug else "about:blank",
            "title": self.title or phrase,
            "status": self.status,
            "detail": self.detail,
            "message": self.detail,
        }
        out.update(self.extra)
        return out

    def response(self) -> JSONResponse:
        return JSONResponse(
            self.body(), status_code=self.status, media_type=MEDIA_TYPE, headers=self.headers
        )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def from_validation(exc: RequestValidationError) -> Problem:
    """A body that is not JSON is 400 (malformed); fields missing or of the wrong type, 422."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return Problem(400, "the request body is not valid JSON", slug="malformed")
    fields = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors
    ]
    detail = "; ".join(f"{'.'.join(f['loc'])}: {f['msg']}" for f in fields) or "invalid request"
    return Problem(422, detail, slug="invalid-request", errors=_plain(fields))


_HTTP_SLUGS = {
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    413: "too-large",
}


def is_v1(path: str) -> bool:
    """Whether `path` is under `/v1`, whose errors are problem details."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def for_path(
    path: str, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error answer in the shape of the path's API: a problem detail under `/v1`,
    `{"message": detail}` elsewhere (HMA's shape)."""
    if is_v1(path):
        return Problem(status, detail, slug=_HTTP_SLUGS.get(status), headers=headers).response()
    return JSONResponse({"message": detail}, status_code=status, headers=headers)


def from_exception(exc: Exception) -> Problem | None:
    """The problem an exception stands for; None for one that is not an error of the request."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, RequestValidationError):
        return from_validation(exc)
    if isinstance(exc, HTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        slug = _HTTP_SLUGS.get(exc.status_code)
        return Problem(exc.status_code, detail, slug=slug, headers=exc.headers)
    if isinstance(exc, BankNotFound):
        return Problem(404, str(exc), slug="bank-not-found")
    if isinstance(exc, BankExists):
        return Problem(409, str(exc), slug="bank-exists")
    if isinstance(exc, IndexNotReady):
        return Problem(503, f"the index is not ready: {exc}", slug="index-not-ready")
    if isinstance(exc, InvalidSignal):
        return Problem(422, str(exc), slug="invalid-signal")
    if isinstance(exc, ChildguardError):
        return Problem(422, str(exc), slug="invalid-value")
    return None


class ProblemRoute(APIRoute):
    """A route whose errors, its dependencies' included, are problem details."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                problem = from_exception(exc)
                if problem is None:
                    raise
                return problem.response()

        return answer
