# Owns the routing routes: destinations, the home country, routes and their confirmation.
"""The hotline's routing over JSON, thin over `childguard.hotline.destinations` and
`childguard.hotline.routing`.

Supervisors own the configuration: destinations (police units, partner hotlines, platforms)
and the home country, every change audited; they reveal a webhook or api destination's
signing secret to its receiver (`POST /v1/hotline/destinations/{id}/secret`, audited).
Analysts own the routes: they list them (routes of items decided since the last round are
proposed first), override one with a reason, and confirm them; nothing leaves the hotline for
a route before its confirmation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from childguard.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER
from childguard.hotline import destinations, routing
from childguard.service.api.paging import (
    MAX_ID,
    cursor_query,
    decode_id_cursor,
    encode_cursor,
    limit_query,
)
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState
from childguard.store.referral_models import (
    DESTINATION_CHANNELS,
    DESTINATION_KINDS,
    ROUTE_STATES,
    ROUTES,
)

router = APIRouter(
    prefix="/v1/hotline", tags=["hotline routing"], route_class=ProblemRoute, responses=RESPONSES
)
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
DestinationId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the destination's id")]
RouteId = Annotated[int, PathParam(ge=1, le=MAX_ID, description="the route's id")]


class DestinationRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(description=f"one of {', '.join(DESTINATION_KINDS)}")
    channel: str = Field(description=f"one of {', '.join(DESTINATION_CHANNELS)}")
    address: str | None = Field(None, max_length=2000, description="email address or URL")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2; police and hotlines")
    vics_profile: str | None = Field(None, description="uk or us")
    public_key: str | None = Field(None, max_length=200, description="age recipient, age1...")
    hosts: list[str] | None = Field(None, max_length=500, description="platforms' hosts")
    active: bool = True


class DestinationChange(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    channel: str | None = None
    address: str | None = Field(None, max_length=2000)
    country: str | None = None
    vics_profile: str | None = None
    public_key: str | None = Field(None, max_length=200)
    hosts: list[str] | None = Field(None, max_length=500)
    active: bool | None = None


class HomeCountry(BaseModel):
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")


class OverrideRequest(BaseModel):
    route: str = Field(description=f"one of {', '.join(ROUTES)}")
    reason: str = Field(min_length=1, max_length=routing.MAX_REASON)
    destination_id: Id | None = None


class ConfirmRequest(BaseModel):
    route_ids: list[Id] = Field(min_length=1, max_length=500)


def secret_answer(secret: str) -> dict[str, str]:
    """A signing secret as a receiver needs it: the secret, the header and how to check it."""
    return {
        "secret": secret,
        "header": SIGNATURE_HEADER,
        "how": (
            f"HMAC-SHA256 keyed by the secret over the {TIMESTAMP_HEADER} value, a '.' and the "
            f"raw request body, hex, sent as {SIGNATURE_HEADER}: sha256=<hex>; compare in "
            "constant time and refuse timestamps more than 5 minutes old"
        ),
    }


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, destinations.DestinationNotFound):
        return Problem(404, str(exc), slug="destination-not-found")
    if isinstance(exc, routing.RouteNotFound):
        return Problem(404, str(exc), slug="route-not-found")
    if isinstance(exc, destinations.InvalidDestination):
        return Problem(422, str(exc), slug="invalid-destination")
    if isinstance(exc, routing.InvalidRoute):
        return Problem(409, str(exc), slug="invalid-route")
    if isinstance(exc, destinations.NothingSigned):
        return Problem(409, str(exc), slug="nothing-signed")
    raise exc


_ERRORS = (
    destinations.DestinationNotFound,
    destinations.InvalidDestination,
    destinations.NothingSigned,
    routing.RouteNotFound,
    routing.InvalidRoute,
)


@router.get("/destinations")
def list_destinations(
    request: Request,
    kind: str | None = Query(None, description=f"one of {', '.join(DESTINATION_KINDS)}"),
    _: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """Every destination: `{"items": [...], "home_country"}`."""
    state = _state(request)
    return {
        "items": [d.to_dict() for d in destinations.list_destinations(state.store, kind=kind)],
        "home_country": destinations.home_country(state.store, state.settings.hotline_home_country),
    }


@router.post("/destinations", status_code=201)
def create_destination(
    request: Request, body: DestinationRequest, caller: Caller = owner("supervisor")
) -> dict[str, Any]:
    """A new destination (audited)."""
    try:
        made = destinations.create_destination(
            _state(request).store, actor=caller.actor, **body.model_dump()
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return made.to_dict()


@router.get("/destinations/{destination_id}")
def get_destination(
    request: Request, destination_id: DestinationId, _: Caller = owner("supervisor")
) -> dict[str, Any]:
    try:
        return destinations.get_destination(_state(request).store, destination_id).to_dict()
    except _ERRORS as exc:
        raise _problem(exc) from None


@router.patch("/destinations/{destination_id}")
def update_destination(
    request: Request,
    destination_id: DestinationId,
    body: DestinationChange,
    caller: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """Change the fields given (audited, with the values before and after)."""
    try:
        changed = destinations.update_destination(
            _state(request).store,
            destination_id,
            actor=caller.actor,
            **body.model_dump(exclude_unset=True),
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return changed.to_dict()


@router.post("/destinations/{destination_id}/secret")
def reveal_destination_secret(
    request: Request, destination_id: DestinationId, caller: Caller = owner("supervisor")
) -> dict[str, str]:
    """The secret a webhook or api destination's requests are signed with, for its receiver
    (every reveal audited): `{"secret", "header", "how"}`; 409 for email or download."""
    state = _state(request)
    try:
        _, secret = destinations.reveal_secret(
            state.store, state.secret_key(), destination_id, actor=caller.actor
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return secret_answer(secret)


@router.put("/home-country")
def set_home_country(
    request: Request, body: HomeCountry, caller: Caller = owner("supervisor")
) -> dict[str, Any]:
    """The hotline's own country: content hosted there goes to its police (audited)."""
    try:
        code = destinations.set_home_country(
            _state(request).store, body.country, actor=caller.actor
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return {"home_country": code}


@router.get("/routes")
async def list_routes(
    request: Request,
    state: str | None = Query(None, description=f"one of {', '.join(ROUTE_STATES)}"),
    route: str | None = Query(None, description=f"one of {', '.join(ROUTES)}"),
    item_id: int | None = Query(None, ge=1, le=MAX_ID),
    confirmed: bool | None = Query(None),
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    _: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Routes in id order: `{"items": [...], "next_cursor"}`. Items decided since the last
    round get their proposed routes first."""
    service = _state(request)
    after = decode_id_cursor(cursor) if cursor else 0

    def work() -> list[routing.RouteInfo]:
        routing.propose_routes(service.store, default_home=service.settings.hotline_home_country)
        return routing.list_routes(
            service.store,
            state=state,
            route=route,
            item_id=item_id,
            confirmed=confirmed,
            after_id=after,
            limit=limit + 1,
        )

    rows = await run_in_threadpool(work)
    page = rows[:limit]
    return {
        "items": [r.to_dict() for r in page],
        "next_cursor": encode_cursor(page[-1].id) if len(rows) > limit else None,
    }


@router.get("/routes/{route_id}")
def get_route(request: Request, route_id: RouteId, _: Caller = owner("analyst")) -> dict[str, Any]:
    try:
        return routing.get_route(_state(request).store, route_id).to_dict()
    except _ERRORS as exc:
        raise _problem(exc) from None


@router.post("/routes/{route_id}/override")
def override_route(
    request: Request, route_id: RouteId, body: OverrideRequest, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """Change a route before it is confirmed; the reason is kept with who gave it."""
    try:
        changed = routing.override(
            _state(request).store,
            route_id,
            route=body.route,
            reason=body.reason,
            actor=caller.actor,
            destination_id=body.destination_id,
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return changed.to_dict()


@router.post("/routes/confirm")
def confirm_routes(
    request: Request, body: ConfirmRequest, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """The analyst's confirmation: from now on referrals and notices may go out for these
    routes; closed routes close, harvested ones alert their organisations."""
    service = _state(request)
    try:
        done = routing.confirm(
            service.store,
            body.route_ids,
            actor=caller.actor,
            check_after=timedelta(hours=service.settings.hotline_removal_check_hours),
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    return {"items": [r.to_dict() for r in done]}
