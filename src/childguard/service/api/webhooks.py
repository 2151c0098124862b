# Owns the /v1 routes of webhook subscriptions: subscribe to match events, see deliveries.
"""`/v1/webhooks`: subscriptions to the service's events, thin over
`childguard.alerts.subscriptions`. Creating one answers its signing secret, once (it is
derived from the service's secret key, never stored). A URL must be http(s) and, unless
`allow_private_fetch` is on, may not name or resolve to a private address (the fetcher's
policy, `childguard.netguard.fetch`). Every route needs a `curate` key; a key that acts for an
organisation sees that organisation's subscriptions only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from childguard.alerts.subscriptions import (
    DEFAULT_EVENTS,
    InvalidSubscription,
    SubscriptionInfo,
    SubscriptionNotFound,
    create_subscription,
    delete_subscription,
    derive_secret,
    get_subscription,
    list_subscriptions,
    update_subscription,
)
from childguard.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from childguard.netguard.fetch import check_fetchable
from childguard.service.api.paging import cursor_query, decode_id_cursor, encode_cursor, limit_query
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState

router = APIRouter(
    prefix="/v1", tags=["v1: webhooks"], route_class=ProblemRoute, responses=RESPONSES
)


class WebhookIn(BaseModel):
    """A new subscription: where to POST which events, for which banks (all when absent)."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(examples=["https://receiver.example/childguard"])
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    banks: list[str] | None = None
    description: str = ""


class WebhookPatch(BaseModel):
    """What to change: `enabled`, `banks` (null: every bank), `description`."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool | None = None
    banks: list[str] | None = None
    description: str | None = None


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _id(raw: str) -> int:
    if not raw.isdigit():
        raise Problem(404, f"no webhook subscription {raw!r}", slug="webhook-not-found")
    return int(raw)


def _not_found(exc: SubscriptionNotFound) -> Problem:
    return Problem(404, str(exc), slug="webhook-not-found")


def _invalid(exc: InvalidSubscription) -> Problem:
    return Problem(422, str(exc), slug="invalid-webhook")


def webhook_json(sub: SubscriptionInfo, *, deliveries: bool = False) -> dict[str, Any]:
    out = sub.to_dict()
    if deliveries:
        out["deliveries"] = [d.to_dict() for d in sub.deliveries]
    return out


@router.post("/webhooks", status_code=201)
def webhooks_create(
    request: Request, body: WebhookIn, caller: Caller = owner("curate")
) -> JSONResponse:
    """Subscribe a URL to events (`match`): 201, `{"webhook": {...}, "secret": str}`. The
    secret signs every delivery (`X-Childguard-Signature`) and is shown only here."""
    state = _state(request)
    allow_private = state.settings.allow_private_fetch
    try:
        sub = create_subscription(
            state.store,
            body.url,
            actor=caller.actor,
            events=body.events,
            banks=body.banks,
            description=body.description,
            organisation_id=caller.organisation_id,
            check_url=lambda url: check_fetchable(url, allow_private=allow_private),
        )
    except InvalidSubscription as exc:
        raise _invalid(exc) from None
    state.events.forget()
    answer = {
        "webhook": webhook_json(sub),
        "secret": derive_secret(state.secret_key(), sub.id),
        "signature": {"header": SIGNATURE_HEADER, "timestamp_header": TIMESTAMP_HEADER},
    }
    return JSONResponse(answer, status_code=201, headers={"Location": f"/v1/webhooks/{sub.id}"})


@router.get("/webhooks")
def webhooks_list(
    request: Request,
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    caller: Caller = owner("curate"),
) -> dict[str, Any]:
    """Subscriptions by id, a page at a time: `{"webhooks": [...], "next_cursor"}`."""
    after = decode_id_cursor(cursor) if cursor is not None else None
    subs = list_subscriptions(_state(request).store, organisation_id=caller.organisation_id)
    if after is not None:
        subs = [s for s in subs if s.id > after]
    page = subs[:limit]
    return {
        "webhooks": [webhook_json(s) for s in page],
        "next_cursor": encode_cursor(page[-1].id) if len(subs) > limit and page else None,
    }


@router.get("/webhooks/{webhook_id}")
def webhooks_show(
    request: Request, webhook_id: str, caller: Caller = owner("curate")
) -> dict[str, Any]:
    """One subscription with its latest deliveries (`status` pending, sent or failed;
    `attempts`, `next_attempt_at`, `last_status`, `last_error`)."""
    try:
        sub = get_subscription(
            _state(request).store, _id(webhook_id), organisation_id=caller.organisation_id
        )
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None
    return {"webhook": webhook_json(sub, deliveries=True)}


@router.patch("/webhooks/{webhook_id}")
def webhooks_update(
    request: Request, webhook_id: str, body: WebhookPatch, caller: Caller = owner("curate")
) -> dict[str, Any]:
    """Enable or disable a subscription, or change its banks or description: the
    subscription as it is now. A disabled subscription gets no new events; its pending
    deliveries wait until it is enabled again."""
    state = _state(request)
    given = body.model_fields_set
    try:
        sub = update_subscription(
            state.store,
            _id(webhook_id),
            actor=caller.actor,
            enabled=body.enabled,
            banks=body.banks,
            all_banks="banks" in given and body.banks is None,
            description=body.description,
            organisation_id=caller.organisation_id,
        )
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None
    except InvalidSubscription as exc:
        raise _invalid(exc) from None
    state.events.forget()
    return {"webhook": webhook_json(sub, deliveries=True)}


@router.delete("/webhooks/{webhook_id}")
def webhooks_delete(
    request: Request, webhook_id: str, caller: Caller = owner("curate")
) -> dict[str, Any]:
    """Remove a subscription and its deliveries: `{"deleted": id}`."""
    state = _state(request)
    number = _id(webhook_id)
    try:
        delete_subscription(
            state.store, number, actor=caller.actor, organisation_id=caller.organisation_id
        )
    except SubscriptionNotFound as exc:
        raise _not_found(exc) from None
    state.events.forget()
    return {"deleted": number}
