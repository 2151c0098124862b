# Owns POST /v1/reports: reports filed by trusted flaggers and partner hotlines.
"""`POST /v1/reports` (role `reporter`): a report of 1-20 URLs, with an optional description,
hints, feedback email and language, filed through `childguard.hotline.reports`. 201 with
`{"id", "tracking_code", "urls"}`; an `Idempotency-Key` makes a retry safe and answers the
same report and tracking code again. The tracking code is kept for replays only sealed (under
a key derived from the service's secret), never in clear. Bad input is a 422 problem detail
whose `code` names the reason and `position` the URL it is about. No address or user agent of
the caller is stored or logged (`service/access_log.py`).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from childguard.hotline.crypto import derive_key, seal, unseal
from childguard.hotline.reports import (
    EMAIL_KEY_PURPOSE,
    MAX_URLS,
    ReportRejected,
    create_report,
)
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.api.v1 import idempotent
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState

router = APIRouter(
    prefix="/v1", tags=["v1: reports"], route_class=ProblemRoute, responses=RESPONSES
)

_REPLAY_KEY_PURPOSE = "report-idempotency"


class HintsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_type: str | None = Field(None, max_length=100)
    content_type: str | None = Field(None, max_length=100)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    urls: list[str] = Field(..., max_length=MAX_URLS * 5)
    description: str | None = None
    hints: HintsIn | None = None
    email: str | None = None
    language: str | None = None


def report_email_key(state: ServiceState) -> bytes:
    """The key feedback emails are sealed under, derived from the service's secret."""
    return derive_key(state.secret_key(), EMAIL_KEY_PURPOSE)


def file_report(
    state: ServiceState,
    urls: list[str],
    *,
    channel: str,
    reporter: str | None,
    description: str | None,
    hints: dict[str, Any] | None,
    email: str | None,
    language: str | None,
) -> Any:
    """`create_report` with the service's email key (its `NewReport`)."""
    key = report_email_key(state) if email and email.strip() else None
    return create_report(
        state.store,
        urls,
        channel=channel,
        reporter=reporter,
        description=description,
        hints=hints,
        email=email,
        language=language,
        email_key=key,
    )


def rejected(exc: ReportRejected) -> Problem:
    """The 422 problem of a refused report."""
    extra: dict[str, Any] = {"code": exc.code}
    if exc.position is not None:
        extra["position"] = exc.position
    return Problem(422, str(exc), slug="invalid-report", **extra)


def _aad(report_id: int) -> bytes:
    return f"report-tracking-code:{report_id}".encode()


@router.post("/reports", status_code=201)
def reports_create(
    request: Request,
    body: ReportIn,
    idempotency_key: str | None = Header(None, description="makes a retry safe"),
    caller: Caller = owner("reporter"),
) -> JSONResponse:
    """File a report: 201 and `{"id", "tracking_code", "urls"}` (the number of distinct URLs
    saved). The URLs are fetched later, by the hotline's processing."""
    state: ServiceState = request.app.state.service
    replay_key = derive_key(state.secret_key(), _REPLAY_KEY_PURPOSE)

    def run() -> dict[str, Any]:
        try:
            new = file_report(
                state,
                body.urls,
                channel="api",
                reporter=caller.actor,
                description=body.description,
                hints=body.hints.model_dump(exclude_none=True) if body.hints else None,
                email=body.email,
                language=body.language,
            )
        except ReportRejected as exc:
            raise rejected(exc) from None
        sealed = seal(replay_key, new.tracking_code.encode(), _aad(new.id))
        return {
            "id": new.id,
            "tracking_code_sealed": base64.b64encode(sealed).decode(),
            "urls": len(new.url_ids),
        }

    answer = idempotent(request, caller, idempotency_key, body, run)
    kept = json.loads(bytes(answer.body))
    code = unseal(replay_key, base64.b64decode(kept["tracking_code_sealed"]), _aad(kept["id"]))
    headers = {k: v for k, v in answer.headers.items() if k.lower() == "idempotent-replayed"}
    return JSONResponse(
        {"id": kept["id"], "tracking_code": code.decode(), "urls": kept["urls"]},
        status_code=201,
        headers=headers,
    )
