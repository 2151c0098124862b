# Owns the service's limits on callers: rate limits per key and per client, the time limit.
"""Limits on what callers may ask of one service process (the per-bank match cap is in
`childguard.service.flood`).

- `RateLimit` (ASGI middleware): requests per API key (`rate_limit_per_key`, keyed by the
  presented key's digest, valid or not) and, for requests with no key, per client address
  (`rate_limit_per_client`), in a moving window (the `limits` package), kept in memory by each
  worker: with N workers a caller may get up to N times the rate. Past it: 429 with
  `Retry-After` (seconds), a problem detail under `/v1` and `{"message"}` elsewhere. The
  health checks are exempt. The client address is used as a key only and never logged.
- `RequestTimeout` (ASGI middleware): a request not answered within `request_timeout_seconds`
  (body upload included) is answered 503 at once. An async handler is cancelled at its next
  `await`. A sync handler (a plain `def` route, run in Starlette's thread pool) cannot be
  stopped: its thread runs on until the function returns, holding one of the pool's threads
  (40 by default), and what it answers is dropped. Once a response has started it is not cut
  off (the limit is on the time to answer, not on streaming the answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from childguard.service import metrics
from childguard.service.api.problems import Problem
from childguard.service.auth import presented_key
from childguard.service.config import rate_limit

# Paths no rate limit applies to: the load balancer's and orchestrator's health checks.
EXEMPT_PATHS = frozenset({"/status", "/status/live"})


def _error(path: str, status: int, slug: str, detail: str, headers: dict[str, str]) -> Any:
    if path == "/v1" or path.startswith("/v1/"):
        return Problem(status, detail, slug=slug, headers=headers).response()
    return JSONResponse({"message": detail}, status_code=status, headers=headers)


async def _answer(response: Any, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


class RateLimit:
    """429 for a caller past its rate: per presented API key, or per client address for
    requests that carry no key. A limit of None lets those callers through."""

    def __init__(self, app: ASGIApp, *, per_key: str, per_client: str) -> None:
        self.app = app
        self.per_key = rate_limit(per_key, "rate_limit_per_key")
        self.per_client = rate_limit(per_client, "rate_limit_per_client")
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def _which(self, scope: Scope) -> tuple[str, RateLimitItem | None, str]:
        token = presented_key(Request(scope))
        if token is not None:
            digest = hashlib.sha256(token.encode()).hexdigest()[:32]
            return "key", self.per_key, digest
        client = scope.get("client")
        return "client", self.per_client, client[0] if client else "-"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        limit, item, identity = self._which(scope)
        if item is None or self.limiter.hit(item, limit, identity):
            await self.app(scope, receive, send)
            return
        reset = self.limiter.get_window_stats(item, limit, identity).reset_time
        retry = max(1, math.ceil(reset - time.time()))
        metrics.RATE_LIMITED.labels(limit).inc()
        per = "API key" if limit == "key" else "client"
        detail = f"too many requests for this {per}: at most {item}; retry in {retry} s"
        headers = {"Retry-After": str(retry)}
        await _answer(_error(path, 429, "rate-limited", detail, headers), send)


class RequestTimeout:
    """503 for a request not answered within `seconds` (see the module docstring for what
    happens to the handler)."""

    def __init__(self, app: ASGIApp, *, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        abandoned = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if abandoned:
                return  # a handler answering after its time: already answered 503
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded))
        try:
            done, _ = await asyncio.wait({task}, timeout=self.seconds)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if done or started:
            await task  # answered in time (or raising), or streaming an answer begun in time
            return
        abandoned = True
        task.cancel()
        task.add_done_callback(_reap)
        metrics.TIMEOUTS.inc()
        path = str(scope.get("path", ""))
        detail = f"the request was not answered within {self.seconds:g} s"
        await _answer(_error(path, 503, "timeout", detail, {"Connection": "close"}), send)


def _reap(task: asyncio.Task[None]) -> None:
    """Collect what an abandoned handler ended with, so asyncio does not warn about it."""
    if not task.cancelled():
        task.exception()
