# Owns the health checks: readiness (/status) and liveness (/status/live).
"""Health checks, public. `/status` is ready when the matcher's indexes are loaded: it answers
the plain text `I-AM-ALIVE`, and `INDEX-NOT-LOADED` with 503 before that (as HMA does)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from childguard.service.auth import Caller, public

router = APIRouter(tags=["health"])


@router.get(
    "/status",
    response_class=PlainTextResponse,
    responses={503: {"description": "INDEX-NOT-LOADED", "content": {"text/plain": {}}}},
)
def status(request: Request, _: Caller = public()) -> PlainTextResponse:
    """Ready: the indexes are loaded and followed."""
    if not request.app.state.service.ready:
        return PlainTextResponse("INDEX-NOT-LOADED", status_code=503)
    return PlainTextResponse("I-AM-ALIVE")


@router.get("/status/live", response_class=PlainTextResponse)
def live(_: Caller = public()) -> PlainTextResponse:
    """Alive: the process answers."""
    return PlainTextResponse("I-AM-ALIVE")
