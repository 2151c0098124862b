# Owns the analysts' case pages: routes to confirm, bundles to download, notices.
"""The analysts' case pages under `/hotline/cases`, for a signed-in user with the `analyst`
role, thin over `childguard.hotline.routing`, `childguard.hotline.referrals` and
`childguard.hotline.notices`.

- `GET /hotline/cases` proposes the routes of items decided since the last look
  (`routing.propose_routes`), then lists routes (filters `state`, `route`, `confirmed`; paged
  by `after`), with a form to confirm those ticked.
- `GET /hotline/cases/{route_id}`: one route: the item's blurred preview (never a clear
  one: `GET /hotline/cases/{route_id}/preview.png`, at the analyst's blur and greyscale), its
  outcome and labels, the URL, host, hosting country, the proposed route with the rules'
  reason, an override with its reason, the state and each step's time; the referrals and
  notices made for it.
- `POST /hotline/cases/{route_id}/override` (route, destination, reason: required) changes a
  route before it is confirmed (`routing.override`); `POST /hotline/cases/confirm` confirms
  the ticked routes, `POST /hotline/cases/{route_id}/confirm` this one (`routing.confirm`):
  **nothing leaves before that**.
- `POST /hotline/cases/{route_id}/referral` builds a referral bundle for a confirmed police
  or hotline route (`referrals.build_referral`, under `<data dir>/bundles/`), which the page
  then offers for download through `GET /v1/hotline/referrals/{id}/bundle`;
  `POST /hotline/cases/{route_id}/referrals/{referral_id}/send` sends it by the destination's
  channel (`referrals.send_referral`; for a `download` destination, once downloaded: the
  analyst handed it over), which moves the route to `referred` or `forwarded`.
- `POST /hotline/cases/{route_id}/notice` makes a draft takedown notice for a confirmed
  route (`notices.create_notice`); `POST /hotline/cases/{route_id}/notices/{notice_id}/send`
  is the analyst's confirmation of the draft, which sends it (`notices.send_notice`, by the
  service's SMTP settings or a signed webhook); re-notices then go out by themselves.

Every form posts with the session's CSRF token and answers with a redirect to the case (or
a message page saying what to fix). An API key gets 400 (the pages are for a person); an
unsigned browser is sent to sign in (as the review pages are).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from childguard.accounts import csrf_token_for
from childguard.errors import ChildguardError, MediaError
from childguard.hotline import destinations, notices, previews, referrals, review, routing
from childguard.hotline.bundles import BundleError
from childguard.hotline.crypto import derive_key
from childguard.hotline.evidence import EVIDENCE_KEY_PURPOSE, EvidenceMissing, open_evidence
from childguard.service.api.referrals import bundles_dir, transport
from childguard.service.auth import Caller, owner, presented_session
from childguard.service.hotline_tasks import notice_settings, notice_transport, preview_default
from childguard.service.state import ServiceState
from childguard.service.web.pages import page
from childguard.service.web.review_pages import REVIEW_HEADERS
from childguard.store.referral_models import (
    NOTICE_CHANNELS,
    NOTICE_RECIPIENTS,
    ROUTE_STATES,
    ROUTES,
)

router = APIRouter(prefix="/hotline/cases", tags=["pages"], include_in_schema=False)

PERSON_ONLY = "the case pages are for a signed-in analyst: sign in at /login"
PAGE_SIZE = 50
# The destination kind each route leads to.
DESTINATION_KIND = {"police": "police", "hotline": "hotline", "tos": "platform"}
REFERRED_ROUTES = ("police", "hotline")
_REFUSED = (ChildguardError, BundleError)


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _render(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> Response:
    response = page(request, name, dict(context), status)
    response.headers.update(REVIEW_HEADERS)
    return response


def _message(
    request: Request, title: str, message: str, status: int, *, back: str | None = None
) -> Response:
    return _render(
        request,
        "_case_message.html",
        {"title": title, "message": message, "back": back, "user": None},
        status,
    )


def _person(request: Request, caller: Caller) -> tuple[int, str] | Response:
    """The analyst's user id and the session's CSRF token, or the refusal for a key."""
    cookie = presented_session(request)
    if caller.user is None or cookie is None:
        return _message(request, "Sign in", PERSON_ONLY, 400)
    return caller.user.id, csrf_token_for(cookie)


def _form_values(form: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _optional_int(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isdigit() else None


def _case(route_id: int) -> str:
    return f"/hotline/cases/{route_id}"


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


@router.get("", response_class=HTMLResponse)
async def cases(request: Request, caller: Caller = owner("analyst")) -> Response:
    """The routes, newest proposals included, filtered and paged, with a confirm form."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    query = request.query_params
    state_filter = _choice(query.get("state"), ROUTE_STATES)
    route_filter = _choice(query.get("route"), ROUTES)
    confirmed_raw = query.get("confirmed")
    confirmed = {"yes": True, "no": False}.get(confirmed_raw or "")
    after = _optional_int(query.get("after")) or 0
    service = _state(request)

    def gather() -> list[routing.RouteInfo]:
        routing.propose_routes(service.store, default_home=service.settings.hotline_home_country)
        return routing.list_routes(
            service.store,
            state=state_filter,
            route=route_filter,
            confirmed=confirmed,
            after_id=after,
            limit=PAGE_SIZE + 1,
        )

    rows = await run_in_threadpool(gather)
    shown = rows[:PAGE_SIZE]
    more = {
        "state": state_filter,
        "route": route_filter,
        "confirmed": confirmed_raw if confirmed is not None else None,
        "after": str(shown[-1].id) if shown else None,
    }
    return _render(
        request,
        "cases.html",
        {
            "user": caller.user,
            "csrf_token": person[1],
            "routes": shown,
            "next_query": urlencode({k: v for k, v in more.items() if v})
            if len(rows) > PAGE_SIZE
            else None,
            "state_filter": state_filter or "",
            "route_filter": route_filter or "",
            "confirmed_filter": confirmed_raw if confirmed is not None else "",
            "route_states": ROUTE_STATES,
            "route_kinds": ROUTES,
        },
    )


def _case_view(state: ServiceState, user_id: int, route_id: int) -> dict[str, Any]:
    store = state.store
    route = routing.get_route(store, route_id)
    item = review.item_view(store, route.item_id)
    decided = [a for a in item["assessments"] if a["kind"] != "vote"]
    all_destinations = destinations.list_destinations(store, active_only=True)
    return {
        "route": route,
        "item": item,
        "decision": decided[-1] if decided else None,
        "destinations": {
            kind: [d for d in all_destinations if d.kind == dest_kind]
            for kind, dest_kind in DESTINATION_KIND.items()
        },
        "referrals": referrals.referrals_for_route(store, route_id),
        "notices": notices.notices_for_route(store, route_id),
        "preferences": review.preview_preferences(store, user_id, preview_default(state.settings)),
    }


@router.get("/{route_id}", response_class=HTMLResponse)
async def case(request: Request, route_id: int, caller: Caller = owner("analyst")) -> Response:
    """One route: the item (blurred), where it is, the proposal, the override, the
    confirmation, its referrals and notices."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    state = _state(request)
    try:
        view = await run_in_threadpool(_case_view, state, person[0], route_id)
    except (routing.RouteNotFound, review.ItemNotFound) as exc:
        return _message(request, "Not found", str(exc), 404)
    return _render(
        request,
        "case.html",
        {
            **view,
            "user": caller.user,
            "csrf_token": person[1],
            "route_kinds": ROUTES,
            "referred_routes": REFERRED_ROUTES,
            "notice_recipients": NOTICE_RECIPIENTS,
            "notice_channels": NOTICE_CHANNELS,
            "built": _optional_int(request.query_params.get("referral")),
        },
    )


@router.get("/{route_id}/preview.png")
async def preview(request: Request, route_id: int, caller: Caller = owner("analyst")) -> Response:
    """The route's item, blurred (and greyscale) at the analyst's preference; never clear."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    state = _state(request)

    def make() -> Response:
        try:
            route = routing.get_route(state.store, route_id)
            data = open_evidence(
                state.store, derive_key(state.secret_key(), EVIDENCE_KEY_PURPOSE), route.item_id
            )
            png, _strip = previews.preview_png(
                data,
                review.preview_preferences(state.store, person[0], preview_default(state.settings)),
                clear=False,
            )
        except routing.RouteNotFound as exc:
            return _message(request, "Not found", str(exc), 404)
        except EvidenceMissing:
            return _message(request, "No evidence", "the item's evidence is not kept", 404)
        except MediaError as exc:
            return _message(request, "No preview", f"the media cannot be shown: {exc}", 422)
        return Response(png, media_type="image/png", headers=dict(REVIEW_HEADERS))

    return await run_in_threadpool(make)


@router.post("/confirm")
async def confirm_many(request: Request, caller: Caller = owner("analyst")) -> Response:
    """Confirm the routes ticked on the list; back to the list."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    form = await request.form()
    ids = [int(v) for v in form.getlist("route_id") if isinstance(v, str) and v.isdigit()]
    if not ids:
        return _message(
            request, "Not confirmed", "tick the routes to confirm", 422, back="/hotline/cases"
        )
    service = _state(request)
    try:
        await run_in_threadpool(
            lambda: routing.confirm(
                service.store,
                ids,
                actor=caller.actor,
                check_after=timedelta(hours=service.settings.hotline_removal_check_hours),
            )
        )
    except _REFUSED as exc:
        return _message(request, "Not confirmed", str(exc), 409, back="/hotline/cases")
    return RedirectResponse("/hotline/cases?confirmed=yes", status_code=303)


@router.post("/{route_id}/confirm")
async def confirm_one(
    request: Request, route_id: int, caller: Caller = owner("analyst")
) -> Response:
    """The analyst's confirmation of this route; back to the case."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    service = _state(request)
    try:
        await run_in_threadpool(
            lambda: routing.confirm(
                service.store,
                [route_id],
                actor=caller.actor,
                check_after=timedelta(hours=service.settings.hotline_removal_check_hours),
            )
        )
    except routing.RouteNotFound as exc:
        return _message(request, "Not found", str(exc), 404)
    except _REFUSED as exc:
        return _message(request, "Not confirmed", str(exc), 409, back=_case(route_id))
    return RedirectResponse(_case(route_id), status_code=303)


@router.post("/{route_id}/override")
async def override(request: Request, route_id: int, caller: Caller = owner("analyst")) -> Response:
    """Change the route before it is confirmed, with the reason; back to the case."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    values = _form_values(await request.form())
    new_route = values.get("route", "")
    destination_id = _optional_int(values.get(f"destination_{new_route}"))
    store = _state(request).store
    try:
        await run_in_threadpool(
            lambda: routing.override(
                store,
                route_id,
                route=new_route,
                reason=values.get("reason", ""),
                actor=caller.actor,
                destination_id=destination_id,
            )
        )
    except routing.RouteNotFound as exc:
        return _message(request, "Not found", str(exc), 404)
    except _REFUSED as exc:
        return _message(request, "Not changed", str(exc), 422, back=_case(route_id))
    return RedirectResponse(_case(route_id), status_code=303)


@router.post("/{route_id}/referral")
async def build_referral(
    request: Request, route_id: int, caller: Caller = owner("analyst")
) -> Response:
    """Build the referral bundle of this confirmed route for its destination; back to the
    case, which offers the bundle for download."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    values = _form_values(await request.form())
    state = _state(request)

    def build() -> referrals.ReferralInfo:
        route = routing.get_route(state.store, route_id)
        destination_id = _optional_int(values.get("destination_id")) or route.destination_id
        if destination_id is None:
            raise referrals.InvalidReferral(
                f"route {route_id} has no destination: choose one, or override the route "
                "before confirming it"
            )
        return referrals.build_referral(
            state.store,
            [route_id],
            destination_id=destination_id,
            actor=caller.actor,
            bundles_dir=bundles_dir(state),
            evidence_key=derive_key(state.secret_key(), EVIDENCE_KEY_PURPOSE),
            with_media=values.get("with_media") == "on",
            notifier_name=state.settings.hotline_notifier_name,
        )

    try:
        built = await run_in_threadpool(build)
    except routing.RouteNotFound as exc:
        return _message(request, "Not found", str(exc), 404)
    except _REFUSED as exc:
        return _message(request, "No bundle", str(exc), 409, back=_case(route_id))
    return RedirectResponse(f"{_case(route_id)}?referral={built.id}", status_code=303)


@router.post("/{route_id}/referrals/{referral_id}/send")
async def send_referral(
    request: Request, route_id: int, referral_id: int, caller: Caller = owner("analyst")
) -> Response:
    """Send the referral by its destination's channel (a download: record it handed over);
    back to the case."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    state = _state(request)
    try:
        await run_in_threadpool(
            lambda: referrals.send_referral(
                state.store, referral_id, actor=caller.actor, transport=transport(state)
            )
        )
    except referrals.ReferralNotFound as exc:
        return _message(request, "Not found", str(exc), 404, back=_case(route_id))
    except _REFUSED as exc:
        return _message(request, "Not sent", str(exc), 409, back=_case(route_id))
    return RedirectResponse(_case(route_id), status_code=303)


@router.post("/{route_id}/notice")
async def create_notice(
    request: Request, route_id: int, caller: Caller = owner("analyst")
) -> Response:
    """A draft takedown notice for this confirmed route; back to the case."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    values = _form_values(await request.form())
    store = _state(request).store
    try:
        await run_in_threadpool(
            lambda: notices.create_notice(
                store,
                [route_id],
                recipient_kind=values.get("recipient_kind", ""),
                channel=values.get("channel", ""),
                actor=caller.actor,
                address=values.get("address") or None,
                recipient_name=values.get("recipient_name") or None,
            )
        )
    except routing.RouteNotFound as exc:
        return _message(request, "Not found", str(exc), 404)
    except _REFUSED as exc:
        return _message(request, "No notice", str(exc), 409, back=_case(route_id))
    return RedirectResponse(_case(route_id), status_code=303)


@router.post("/{route_id}/notices/{notice_id}/send")
async def send_notice(
    request: Request, route_id: int, notice_id: int, caller: Caller = owner("analyst")
) -> Response:
    """The analyst's confirmation of a draft notice: it is sent now; back to the case."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    state = _state(request)
    secret = state.secret_key()
    try:
        await run_in_threadpool(
            lambda: notices.send_notice(
                state.store,
                notice_id,
                actor=caller.actor,
                transport=notice_transport(state.settings, secret, state.store),
                settings=notice_settings(state.settings, secret),
            )
        )
    except notices.NoticeNotFound as exc:
        return _message(request, "Not found", str(exc), 404, back=_case(route_id))
    except _REFUSED as exc:
        return _message(request, "Not sent", str(exc), 409, back=_case(route_id))
    return RedirectResponse(_case(route_id), status_code=303)
