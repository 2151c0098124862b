# Owns the organisation's actions on its sightings, contacts and album monitors over the API.
"""The organisation's actions under `/v1/organisation/...` (owner `org-admin`), thin over
`childguard.protect.sighting_actions`; the pages under `/org` call the same functions.

- `GET /v1/organisation/summary` (`since`: a time; default the caller's last visit for a
  signed-in user, else all time): photos (and `photo_warnings`, the photos by warning code),
  new sightings, open and failed alerts.
- `GET /v1/organisation/sightings/{id}/state`; `POST .../seen`; `POST .../false-alarm`
  (`{"reason"}`: required); `POST .../hotline-report` (`{"note", "language"}`: 201 with the
  report id and tracking code); `GET .../takedown-letter?lang=` (a plain-text attachment).
- `PATCH /v1/organisation/contacts` (`{"emails", "webhook_url", "remove_webhook"}`);
  `POST /v1/organisation/contacts/test` (one test alert per channel, each channel's result).
- `GET /v1/organisation/albums`, `POST /v1/organisation/albums` (`{"url", "item",
  "item_views", "item_image", "recheck_every"}`), `DELETE /v1/organisation/albums/{name}`.

Every id is the caller's organisation's or 404, as an id that does not exist.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from childguard.alerts.dispatch import AlertTransport
from childguard.alerts.email import SmtpSettings
from childguard.alerts.webhook import RetryPolicy
from childguard.hotline.reports import ReportRejected
from childguard.netguard.fetch import check_fetchable
from childguard.protect import sighting_actions as actions
from childguard.protect.takedown_letter import LETTER_LANGUAGES, TakedownLetter
from childguard.service.api.orgs import my_organisation, organisation_json
from childguard.service.api.paging import MAX_ID, filter_text, filter_time
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState
from childguard.store.protect_models import Organisation

router = APIRouter(
    prefix="/v1/organisation",
    tags=["organisations"],
    route_class=ProblemRoute,
    responses=RESPONSES,
)

SMTP_HOST_ENV = "CHILDGUARD_SMTP_HOST"


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def alert_transport() -> AlertTransport:
    """How the service's alerts leave: SMTP from `CHILDGUARD_SMTP_*` (none without
    `CHILDGUARD_SMTP_HOST`), the webhook tried once per round."""
    smtp = SmtpSettings.from_env() if os.environ.get(SMTP_HOST_ENV) else None
    return AlertTransport(smtp=smtp, webhook_policy=RetryPolicy(attempts=1, timeout_s=10))


def url_check(state: ServiceState) -> Any:
    """The service's address policy for URLs it will send to (webhooks)."""

    def check(url: str) -> None:
        check_fetchable(url, allow_private=state.settings.allow_private_fetch)

    return check


def letter_response(letter: TakedownLetter) -> Response:
    """A takedown letter as a plain-text download."""
    return Response(
        f"Subject: {letter.subject}\n\n{letter.body}",
        media_type="text/plain; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{letter.file_name}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _not_found(sighting_id: int) -> Problem:
    return Problem(404, f"no sighting with id {sighting_id}", slug="sighting-not-found")


def _refused(exc: Exception) -> Problem:
    return Problem(422, str(exc), slug="invalid-value")


_SIGHTING = Path(ge=1, le=MAX_ID)


@router.get("/summary")
def summary(
    request: Request,
    since: datetime | None = Query(None, description="new sightings first seen since this time"),
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """Photos protected, sightings new since `since`, those not acted on, open alerts."""
    state = _state(request)
    org = my_organisation(state, caller)
    return actions.dashboard_summary(state.store, org, filter_time(since, "since")).to_dict()


@router.get("/sightings/{sighting_id}/state")
def sighting_state(
    request: Request, sighting_id: int = _SIGHTING, caller: Caller = owner("org-admin")
) -> dict[str, Any]:
    """The organisation's state of one of its sightings: new, seen, false-alarm, reported."""
    state = _state(request)
    org = my_organisation(state, caller)
    try:
        return actions.sighting_state(state.store, org, sighting_id).to_dict()
    except actions.SightingNotFound:
        raise _not_found(sighting_id) from None


@router.post("/sightings/{sighting_id}/seen")
def sighting_seen(
    request: Request, sighting_id: int = _SIGHTING, caller: Caller = owner("org-admin")
) -> dict[str, Any]:
    """Mark a sighting as seen."""
    state = _state(request)
    org = my_organisation(state, caller)
    try:
        return actions.mark_seen(state.store, org, sighting_id, actor=caller.actor).to_dict()
    except actions.SightingNotFound:
        raise _not_found(sighting_id) from None


class FalseAlarmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str


@router.post("/sightings/{sighting_id}/false-alarm")
def sighting_false_alarm(
    request: Request,
    body: FalseAlarmIn,
    sighting_id: int = _SIGHTING,
    caller: Caller = owner("org-admin"),
) -> dict[str, Any]:
    """Mark a sighting as a false alarm, with the reason: its content goes into the
    organisation's allow bank and never alerts again."""
    state = _state(request)
    org = my_organisation(state, caller)
    filter_text(body.reason, "reason")
    try:
        done = actions.mark_false_alarm(
            state.store, org, sighting_id, body.reason, actor=caller.actor
        )
    except actions.SightingNotFound:
        raise _not_found(sighting_id) from None
    except actions.ActionRefused as exc:
        raise _refused(exc) from None
    state.changed()
    return done.to_dict()


class HotlineReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = None
    language: str | None = None


@router.post("/sightings/{sighting_id}/hotline-report", status_code=201)
def sighting_hotline_report(
    request: Request,
    body: HotlineReportIn,
    sighting_id: int = _SIGHTING,
    caller: Caller = owner("org-admin"),
) -> JSONResponse:
    """Report a sighting to the hotline: a report of its page and image URLs, for review as a
    possibly harvested photo. 201 with the state, the report id and its tracking code."""
    state = _state(request)
    org = my_organisation(state, caller)
    filter_text(body.note, "note")
    try:
        filed = actions.report_to_hotline(
            state.store,
            org,
            sighting_id,
            actor=caller.actor,
            note=body.note,
            language=body.language,
            channel="api",
        )
    except actions.SightingNotFound:
        raise _not_found(sighting_id) from None
    except (ReportRejected, actions.ActionRefused) as exc:
        raise _refused(exc) from None
    return JSONResponse(
        {**filed.state.to_dict(), "tracking_code": filed.tracking_code}, status_code=201
    )


@router.get("/sightings/{sighting_id}/takedown-letter")
def sighting_takedown_letter(
    request: Request,
    sighting_id: int = _SIGHTING,
    lang: str = Query("en", description="nl, fr, de or en"),
    caller: Caller = owner("org-admin"),
) -> Response:
    """The takedown request letter for the host, pre-filled, as plain text."""
    state = _state(request)
    org = my_organisation(state, caller)
    if lang not in LETTER_LANGUAGES:
        raise Problem(
            422, f"lang must be one of {', '.join(LETTER_LANGUAGES)}", slug="invalid-value"
        )
    try:
        letter = actions.takedown_letter(state.store, org, sighting_id, language=lang)
    except actions.SightingNotFound:
        raise _not_found(sighting_id) from None
    return letter_response(letter)


class ContactsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    emails: list[str] | None = None
    webhook_url: str | None = None
    remove_webhook: bool = False


@router.patch("/contacts")
def contacts_update(
    request: Request, body: ContactsIn, caller: Caller = owner("org-admin")
) -> dict[str, Any]:
    """Change the alert emails (the list replaces the old one) and the webhook; the
    organisation as it is now, with `changes`. A new webhook's secret is in
    `webhook_secret` (shown only here)."""
    state = _state(request)
    org = my_organisation(state, caller)
    for i, email in enumerate(body.emails or []):
        filter_text(email, f"emails[{i}]")
    filter_text(body.webhook_url, "webhook_url")
    try:
        now, changes = actions.update_contacts(
            state.store,
            org,
            emails=body.emails,
            webhook_url=body.webhook_url,
            remove_webhook=body.remove_webhook,
            actor=caller.actor,
            check_url=url_check(state),
        )
    except actions.ActionRefused as exc:
        raise _refused(exc) from None
    answer = {**organisation_json(now), "changes": changes}
    if "webhook_secret" in changes and now.webhook_secret:
        answer["webhook_secret"] = now.webhook_secret
    return answer


def channel_results(state: ServiceState, org: Organisation, actor: str) -> list[dict[str, Any]]:
    """Send the organisation a test alert on each channel; each channel's result."""
    results = actions.send_test_alert(
        org, alert_transport(), actor=actor, store=state.store, check_url=url_check(state)
    )
    return [r.__dict__ for r in results]


@router.post("/contacts/test")
async def contacts_test(request: Request, caller: Caller = owner("org-admin")) -> dict[str, Any]:
    """Send one test alert by email and webhook, as real alerts go: `{"results": [{"channel",
    "target", "ok", "detail"}]}`."""
    state = _state(request)
    org = await run_in_threadpool(my_organisation, state, caller)
    try:
        results = await run_in_threadpool(channel_results, state, org, caller.actor)
    except actions.ActionRefused as exc:
        raise _refused(exc) from None
    return {"results": results}


def album_json(monitor: actions.AlbumMonitor) -> dict[str, Any]:
    return {
        "name": monitor.name,
        "url": monitor.url,
        "profile": dict(monitor.profile.__dict__),
        "recheck_every": monitor.recheck_every,
        "last_run_at": monitor.last_run_at.isoformat() if monitor.last_run_at else None,
        "series": {
            photo: [[at.isoformat(), views] for at, views in points]
            for photo, points in monitor.series.items()
        },
        "spike_alerts": [a.id for a in monitor.spike_alerts],
    }


@router.get("/albums")
def albums_list(request: Request, caller: Caller = owner("org-admin")) -> dict[str, Any]:
    """The organisation's album monitors, each photo's view series and spike alerts."""
    state = _state(request)
    org = my_organisation(state, caller)
    return {"albums": [album_json(m) for m in actions.album_monitors(state.store, org)]}


class AlbumIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    item: str
    item_views: str
    item_image: str = "img"
    recheck_every: int = 6 * 3600


@router.post("/albums", status_code=201)
def albums_add(
    request: Request, body: AlbumIn, caller: Caller = owner("org-admin")
) -> JSONResponse:
    """Watch one of the organisation's own album pages, with its site profile."""
    state = _state(request)
    org = my_organisation(state, caller)
    for name in ("url", "item", "item_views", "item_image"):
        filter_text(getattr(body, name), name)
    if not 600 <= body.recheck_every <= 30 * 86400:
        raise Problem(422, "recheck_every must be 600 to 2592000 seconds", slug="invalid-value")
    try:
        watch = actions.add_album_monitor(
            state.store,
            org,
            body.url,
            item=body.item,
            item_views=body.item_views,
            item_image=body.item_image,
            recheck_every=body.recheck_every,
            actor=caller.actor,
        )
    except actions.ActionRefused as exc:
        raise _refused(exc) from None
    return JSONResponse({"name": watch.name, "url": watch.seeds[0]}, status_code=201)


@router.delete("/albums/{name}", status_code=204)
def albums_remove(request: Request, name: str, caller: Caller = owner("org-admin")) -> Response:
    """Stop watching an album page of the organisation's; 404 for any other name."""
    state = _state(request)
    org = my_organisation(state, caller)
    try:
        actions.remove_album_monitor(state.store, org, name, actor=caller.actor)
    except actions.ActionRefused:
        raise Problem(404, f"no album monitor {name[:80]!r}", slug="album-not-found") from None
    return Response(status_code=204)
