# Owns the health checks: readiness (/status) and liveness (/status/live).
"""Health checks, public. `/status` is ready when the matcher's indexes are loaded: it answers
the plain text `I-AM-ALIVE`, and `INDEX-NOT-LOADED` with 503 before that (as HMA does).

Both name the process that answered in `X-Childguard-Worker` (its process id), so a client
can tell the workers of one `childguard serve --workers N` apart: a connection stays with the
worker that accepted it."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from childguard.service.auth import Caller, public

router = APIRouter(tags=["health"])
WORKER_HEADER = "X-Childguard-Worker"


def _answer(text: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status, headers={WORKER_HEADER: str(os.getpid())})


@router.get(
    "/status",
    response_class=PlainTextResponse,
    responses={503: {"description": "INDEX-NOT-LOADED", "content": {"text/plain": {}}}},
)
def status(request: Request, _: Caller = public()) -> PlainTextResponse:
    """Ready: the indexes are loaded and followed."""
    if not request.app.state.service.ready:
        return _answer("INDEX-NOT-LOADED", 503)
    return _answer("I-AM-ALIVE")


@router.get("/status/live", response_class=PlainTextResponse)
def live(_: Caller = public()) -> PlainTextResponse:
    """Alive: the process answers."""
    return _answer("I-AM-ALIVE")
