# Owns the /v1/hotline notice routes: drafts, the analyst's confirmation, and removal checks.
"""Takedown notices over JSON, thin over `childguard.hotline.notices` and
`childguard.hotline.removal`; every route but the webhook secret's is the `analyst` role's.

- `POST /v1/hotline/notices`: a draft notice for confirmed routes of one recipient (201);
  nothing is sent.
- `GET /v1/hotline/notices` (`state`, `escalated`, cursor pages) and
  `GET /v1/hotline/notices/{id}`: a notice with its sendings, the host's events, the host link
  once issued and a preview of the next message.
- `POST /v1/hotline/notices/{id}/send`: the analyst's confirmation; the first sending goes
  out at once (a failed one is retried by the service's `hotline-notices` task, as are the
  re-notices).
- `POST /v1/hotline/routes/{id}/check`: a removal check of one route now.
- `POST /v1/hotline/notices/webhook-secret` `{"address"}` (the `supervisor` role's): the
  secret webhook notices to that address are signed with, for its receiver (audited): the
  platform destination's own when one has exactly that address, else the address's.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from childguard.hotline import notices, removal, routing
from childguard.service.api.paging import (
    MAX_ID,
    cursor_query,
    decode_id_cursor,
    encode_cursor,
    limit_query,
)
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.api.routing import secret_answer
from childguard.service.auth import Caller, owner
from childguard.service.hotline_tasks import notice_settings, notice_transport, removal_settings
from childguard.service.state import ServiceState
from childguard.store.base import utcnow
from childguard.store.referral_models import NOTICE_CHANNELS, NOTICE_RECIPIENTS, NOTICE_STATES

router = APIRouter(
    prefix="/v1/hotline", tags=["hotline notices"], route_class=ProblemRoute, responses=RESPONSES
)

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
NoticeId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the notice's id")]
RouteId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the route's id")]


class WebhookAddress(BaseModel):
    address: str = Field(min_length=1, max_length=2000, description="the webhook's URL")


class NoticeRequest(BaseModel):
    route_ids: list[Id] = Field(min_length=1, max_length=notices.MAX_ROUTES)
    recipient_kind: str = Field(description=f"one of {', '.join(NOTICE_RECIPIENTS)}")
    channel: str = Field(description=f"one of {', '.join(NOTICE_CHANNELS)}")
    address: str | None = Field(
        None,
        max_length=2000,
        description="an email address or webhook URL; by default the platform's or the RDAP "
        "abuse contact of the host trace",
    )
    recipient_name: str | None = Field(None, max_length=notices.MAX_NAME)
    reason: str | None = Field(
        None, max_length=notices.MAX_REASON, description="by default, the outcome in words"
    )
    identity_withheld: bool | None = Field(
        None,
        description="leave out the notifier's name and email (DSA Art. 16(2)(c)); by default "
        "for child sexual abuse material",
    )


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, notices.NoticeNotFound):
        return Problem(404, str(exc), slug="notice-not-found")
    if isinstance(exc, routing.RouteNotFound):
        return Problem(404, str(exc), slug="route-not-found")
    if isinstance(exc, routing.RouteNotConfirmed):
        return Problem(409, str(exc), slug="route-not-confirmed")
    if isinstance(exc, notices.NoticeNotDraft):
        return Problem(409, str(exc), slug="notice-sent")
    if isinstance(exc, notices.InvalidNotice):
        return Problem(422, str(exc), slug="invalid-notice")
    if isinstance(exc, routing.InvalidRoute):
        return Problem(409, str(exc), slug="invalid-route")
    raise exc


_ERRORS = (
    notices.NoticeNotFound,
    notices.NoticeNotDraft,
    notices.InvalidNotice,
    routing.RouteNotFound,
    routing.RouteNotConfirmed,
    routing.InvalidRoute,
)


def _detail(state: ServiceState, info: notices.NoticeInfo) -> dict[str, Any]:
    settings = notice_settings(state.settings, state.secret_key())
    out = info.to_dict()
    out["host_link"] = (
        notices.host_link(settings, info.id, info.link_expires_at)
        if info.link_expires_at is not None
        else None
    )
    if info.state != "closed":
        message = notices.message_of(state.store, info.id, settings)
        out["preview"] = {"subject": message.subject, "body": message.body}
    return out


@router.post("/notices", status_code=201)
async def create_notice(
    request: Request, body: NoticeRequest, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """A draft notice (nothing is sent): the notice, with a preview of its message."""
    state = _state(request)

    def work() -> dict[str, Any]:
        info = notices.create_notice(
            state.store,
            body.route_ids,
            recipient_kind=body.recipient_kind,
            channel=body.channel,
            actor=caller.actor,
            address=body.address,
            recipient_name=body.recipient_name,
            reason=body.reason,
            identity_withheld=body.identity_withheld,
        )
        return _detail(state, notices.get_notice(state.store, info.id))

    try:
        return await run_in_threadpool(work)
    except _ERRORS as exc:
        raise _problem(exc) from None


@router.post("/notices/webhook-secret")
def reveal_webhook_secret(
    request: Request, body: WebhookAddress, caller: Caller = owner("supervisor")
) -> dict[str, Any]:
    """The secret webhook notices to `address` are signed with, for its receiver (audited):
    `{"secret", "header", "how", "destination_id"}`; `destination_id` names the platform
    destination whose secret it is, or is null."""
    state = _state(request)
    try:
        secret, platform = notices.reveal_webhook_secret(
            state.store, state.secret_key(), body.address, actor=caller.actor
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return {**secret_answer(secret), "destination_id": platform.id if platform else None}


@router.get("/notices")
def list_notices(
    request: Request,
    state: str | None = Query(None, description=f"one of {', '.join(NOTICE_STATES)}"),
    escalated: bool | None = Query(None),
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    _: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Notices in id order: `{"items": [...], "next_cursor"}`."""
    after = decode_id_cursor(cursor) if cursor else 0
    rows = notices.list_notices(
        _state(request).store, state=state, escalated=escalated, after_id=after, limit=limit + 1
    )
    page = rows[:limit]
    return {
        "items": [r.to_dict() for r in page],
        "next_cursor": encode_cursor(page[-1].id) if len(rows) > limit else None,
    }


@router.get("/notices/{notice_id}")
def get_notice(
    request: Request, notice_id: NoticeId, _: Caller = owner("analyst")
) -> dict[str, Any]:
    """A notice with its sendings, the host's events, its host link and a preview."""
    state = _state(request)
    try:
        return _detail(state, notices.get_notice(state.store, notice_id))
    except _ERRORS as exc:
        raise _problem(exc) from None


@router.post("/notices/{notice_id}/send")
async def send_notice(
    request: Request, notice_id: NoticeId, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """The analyst's confirmation of a draft: the first sending goes out now; the answer
    says whether it was `sent` or `failed` (then retried by the service)."""
    state = _state(request)
    secret = state.secret_key()

    def work() -> dict[str, Any]:
        info = notices.send_notice(
            state.store,
            notice_id,
            actor=caller.actor,
            transport=notice_transport(state.settings, secret, state.store),
            settings=notice_settings(state.settings, secret),
        )
        return _detail(state, info)

    try:
        return await run_in_threadpool(work)
    except _ERRORS as exc:
        raise _problem(exc) from None


@router.post("/routes/{route_id}/check")
async def check_route(
    request: Request, route_id: RouteId, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """A removal check of one confirmed route now: its result and the route's state."""
    state = _state(request)
    try:
        result = await run_in_threadpool(
            lambda: removal.check_route(
                state.store,
                route_id,
                now=utcnow(),
                settings=removal_settings(state.settings),
                actor=caller.actor,
            )
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return result.to_dict()
