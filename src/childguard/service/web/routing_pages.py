# Owns the supervisors' routing page: the home country and the destinations, in the browser.
"""The routing configuration in the browser, thin over `childguard.hotline.destinations`.

`GET /hotline/routing` (a signed-in `supervisor`) shows the home country and every
destination (police units, partner hotlines, platforms: country, channel, address, VICS
profile, whether evidence can be encrypted to it, the hosts it covers, active or not), with
forms to set the home country, add a destination and take one out of routing or back. Every
change is audited by the library, as over the API (`/v1/hotline/destinations`). Forms carry
the session's CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from childguard.hotline import destinations
from childguard.service.api.paging import MAX_ID
from childguard.service.auth import Caller, owner
from childguard.service.web import supervisor_pages
from childguard.store.referral_models import DESTINATION_CHANNELS, DESTINATION_KINDS

router = APIRouter(prefix="/hotline/routing", tags=["pages"], include_in_schema=False)

PERSON_ONLY = "the routing page is for a signed-in supervisor: sign in at /login"
HOME = "/hotline/routing"
_REFUSED = (destinations.InvalidDestination, destinations.DestinationNotFound)


def _message(request: Request, title: str, text: str, status: int) -> Response:
    return supervisor_pages.message(request, title, text, status, back=HOME)


def _signed_in(request: Request, caller: Caller) -> str | Response:
    """The session's CSRF token, or the refusal for a key."""
    return supervisor_pages.signed_in_token(request, caller, refusal=PERSON_ONLY, back=HOME)


def _text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    text = value.strip() if isinstance(value, str) else ""
    return text or None


def _hosts(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [h for h in text.replace(",", "\n").split() if h]


async def _change(request: Request, work: Callable[[], object], title: str) -> Response:
    try:
        await run_in_threadpool(work)
    except _REFUSED as exc:
        status = 404 if isinstance(exc, destinations.DestinationNotFound) else 422
        return _message(request, title, str(exc), status)
    return RedirectResponse(HOME, status_code=303)


@router.get("", response_class=HTMLResponse)
async def routing_page(request: Request, caller: Caller = owner("supervisor")) -> Response:
    """The home country and the destinations, with their forms."""
    token = _signed_in(request, caller)
    if isinstance(token, Response):
        return token
    service = supervisor_pages.service_state(request)

    def load() -> tuple[str, list[destinations.DestinationInfo]]:
        home = destinations.home_country(service.store, service.settings.hotline_home_country)
        return home, destinations.list_destinations(service.store)

    home, known = await run_in_threadpool(load)
    return supervisor_pages.render(
        request,
        "routing.html",
        {
            "user": caller.user,
            "csrf_token": token,
            "home_country": home,
            "destinations": known,
            "kinds": DESTINATION_KINDS,
            "channels": DESTINATION_CHANNELS,
            "profiles": destinations.VICS_PROFILES,
        },
    )


@router.post("/home-country")
async def set_home_country(request: Request, caller: Caller = owner("supervisor")) -> Response:
    token = _signed_in(request, caller)
    if isinstance(token, Response):
        return token
    values = await request.form()
    store = supervisor_pages.service_state(request).store
    country = _text(values, "country") or ""
    return await _change(
        request,
        lambda: destinations.set_home_country(store, country, actor=caller.actor),
        "Home country not set",
    )


@router.post("/destinations")
async def add_destination(request: Request, caller: Caller = owner("supervisor")) -> Response:
    token = _signed_in(request, caller)
    if isinstance(token, Response):
        return token
    values = await request.form()
    store = supervisor_pages.service_state(request).store
    return await _change(
        request,
        lambda: destinations.create_destination(
            store,
            name=_text(values, "name") or "",
            kind=_text(values, "kind") or "",
            channel=_text(values, "channel") or "",
            address=_text(values, "address"),
            country=_text(values, "country"),
            vics_profile=_text(values, "vics_profile"),
            public_key=_text(values, "public_key"),
            hosts=_hosts(_text(values, "hosts")),
            actor=caller.actor,
        ),
        "Destination not added",
    )


@router.post("/destinations/{destination_id}/active")
async def set_active(
    request: Request,
    destination_id: int = Path(ge=1, le=MAX_ID),
    caller: Caller = owner("supervisor"),
) -> Response:
    """Take a destination out of routing (`active=no`) or back (`active=yes`)."""
    token = _signed_in(request, caller)
    if isinstance(token, Response):
        return token
    values = await request.form()
    active = _text(values, "active") == "yes"
    store = supervisor_pages.service_state(request).store
    return await _change(
        request,
        lambda: destinations.update_destination(
            store, destination_id, actor=caller.actor, active=active
        ),
        "Destination not changed",
    )
