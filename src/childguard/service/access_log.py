# Owns the access log: one structured line per request, and the request id.
"""The access log (ASGI middleware): one `http.request` line per request through
`childguard.log` (structlog; JSON lines on stderr when it is not a terminal), with:

- `method`, `route` (the route template, `/v1/banks/{name}`, where a route matched; else
  `path`, the path alone), `status`, `duration_ms`, `bytes` (of the response body);
- `actor`, the caller's name in the audit log (`key:3`, a signed-in user's name), as the route
  rule found it (`ACTOR_SCOPE_KEY` in the request's scope); none where no credentials were
  sent or they were not valid (401);
- `request_id`: the caller's `X-Request-ID` when it is 1-128 characters of letters, digits and
  `-_.:`, else a new one; echoed in the response's `X-Request-ID` and bound to every other log
  line of the request;
- `client` and `user_agent`, except on the report routes (`/report`, `/v1/reports`), whose
  reporters' addresses and software are never written anywhere, and the host link's pages
  (`/host`), where a host answers a takedown notice without an account.

Never logged: query strings (a `/m/lookup?signal=` hash, a `?url=`), request or response
bodies, images, keys and cookies. The same pass counts `childguard_http_requests_total` and
the request duration (`childguard.service.metrics`).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from childguard.log import get_logger
from childguard.service import metrics
from childguard.service.auth import ACTOR_SCOPE_KEY

log = get_logger("childguard.access")

# Path prefixes whose callers' address and user agent are never logged: the public's reports
# and the hosts' answers to notices through their links.
PRIVATE_PREFIXES = ("/report", "/v1/reports", "/host")
REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_MAX_FIELD = 200


def is_private(path: str) -> bool:
    """Whether `path` is a report or host-link route, whose callers are not identified in
    the log."""
    return any(path == p or path.startswith(p + "/") for p in PRIVATE_PREFIXES)


def request_id_of(scope: Scope) -> str:
    """The request id: the caller's `X-Request-ID` if it is well formed, else a new one."""
    for name, value in scope.get("headers") or ():
        if name == REQUEST_ID_HEADER.encode():
            text = value.decode("latin-1").strip()
            if _REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex


def route_of(scope: Scope) -> str | None:
    """The template of the route that answered (`/v1/banks/{name}`), None if none matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def _actor(scope: Scope) -> str | None:
    named = scope.get(ACTOR_SCOPE_KEY)
    return named if isinstance(named, str) else None


class AccessLog:
    """Log one line per HTTP request and echo its request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        started = time.perf_counter()
        status = 500
        size = 0

        async def logged(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [
                    (k, v) for k, v in message.get("headers", ()) if k.lower() != b"x-request-id"
                ]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, logged)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
            self._log(scope, request_id, status, size, time.perf_counter() - started)

    def _log(self, scope: Scope, request_id: str, status: int, size: int, seconds: float) -> None:
        method = str(scope.get("method", ""))
        path = str(scope.get("path", ""))
        route = route_of(scope)
        metrics.observe_request(route or metrics.UNMATCHED, method, status, seconds)
        fields: dict[str, Any] = {"method": method}
        if route is not None:
            fields["route"] = route
        else:
            fields["path"] = path[:_MAX_FIELD]
        fields.update(
            status=status,
            duration_ms=round(seconds * 1000, 1),
            bytes=size,
            request_id=request_id,
        )
        actor = _actor(scope)
        if actor is not None:
            fields["actor"] = actor
        if not is_private(path):
            client = scope.get("client")
            if client:
                fields["client"] = client[0]
            agent = _header(scope, b"user-agent")
            if agent:
                fields["user_agent"] = agent[:_MAX_FIELD]
        log.info("http.request", **fields)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return str(value.decode("latin-1"))
    return None
