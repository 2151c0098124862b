# Owns the organisation's pages: dashboard, sightings and the actions on them, album monitors,
# contacts and alerts.
"""The organisation's pages under `/org`, for a signed-in user with the `org-admin` role, thin
over `childguard.protect.sighting_actions` and `childguard.protect.tenancy`. The organisation
is always the caller's own (`Caller.organisation_id`); an id of another organisation's
sighting or album is answered as one that does not exist.

- `GET /org`: the dashboard: photos protected and those to register again or hard to find,
  sightings new since the user's last visit,
  sightings not acted on, open alerts with the failed ones and their last error.
- `GET /org/sightings` (filters `status`: online, removed, changed; `state`: new, seen,
  false-alarm, reported): each sighting's page, image URL, first and last seen, times seen,
  status, state and the matched photo's file name and title.
- `GET /org/sightings/{id}`: one sighting with its page's views and comments charted over time
  (SVG drawn on the server, `childguard.hotline.charts`), and its actions:
  `POST .../seen`, `POST .../false-alarm` (`reason`), `POST .../report` (to the hotline),
  `GET .../letter?language=` (the takedown request letter, plain text).
- `GET /org/albums`: the album monitors with each photo's views charted and the view-spike
  alerts with their series as evidence; `POST /org/albums` adds one (URL and site profile),
  `POST /org/albums/{name}/remove` removes one.
- `GET /org/contacts`: alert emails and webhook; `POST /org/contacts` edits them,
  `POST /org/contacts/remove-email`, `POST /org/contacts/remove-webhook`, and
  `POST /org/contacts/test` sends a test alert through the real email and webhook paths and
  shows each channel's result.
- `GET /org/alerts` (filter `status`: pending, sent, failed): alerts with their delivery state.
- `GET /org/photos` (`after`: the last id of the page before; `warning`: `outdated`, the
  photos to register again, or `any`, every photo with a warning): the registered photos in
  registration order, PAGE_SIZE a page, each with its warning where its copies may go
  unnoticed (`protect.register.photo_warning`).

The actions are forms posted with the session's CSRF token; htmx (vendored, served by
`/org/static/vendor/htmx.min.js`) sends them in place and the page answers with the part that
changed (`HX-Request`); without scripts they post and come back to the page. No inline script.
Dutch, French, German and English (`?lang=`, remembered; else `Accept-Language`). An API key
gets 400: the pages are for a person.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from childguard.accounts import csrf_token_for
from childguard.errors import ChildguardError
from childguard.hotline import charts
from childguard.hotline.reports import ReportRejected
from childguard.protect import sighting_actions as actions
from childguard.protect.organisations import OrganisationNotFound, get_organisation_by_id
from childguard.protect.register import ANY_WARNING, OUTDATED, PhotoWarning, photo_warning
from childguard.protect.takedown_letter import LETTER_LANGUAGES
from childguard.protect.tenancy import OrganisationSighting, photos_page
from childguard.service.api.org_actions import alert_transport, letter_response, url_check
from childguard.service.auth import Caller, owner, presented_session
from childguard.service.state import ServiceState
from childguard.service.web.i18n import CATALOGS, LANGUAGES, choose_language
from childguard.service.web.org_register_pages import WARNING_LABELS
from childguard.service.web.pages import PAGE_HEADERS, page
from childguard.store.crawl_models import SIGHTING_STATUSES
from childguard.store.org_page_models import SIGHTING_STATES
from childguard.store.protect_models import ALERT_STATUSES, Organisation, ProtectedPhoto

router = APIRouter(prefix="/org", tags=["pages"], include_in_schema=False)

LANGUAGE_COOKIE = "childguard_lang"
_LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
ORG_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; "
        "style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
}
PAGE_SIZE = 100
# A cursor longer than this is no id (a 64-bit id has at most 19 digits): the first page.
_MAX_ID_DIGITS = 18


def _(message: str) -> str:
    """Marks `message` for the catalogs; it is translated where it is shown."""
    return message


PERSON_ONLY = _("These pages are for a signed-in user of an organisation: sign in at /login.")
NO_ORGANISATION = _("Your account does not belong to an organisation.")
NOT_FOUND = _("There is no such sighting among your organisation's.")
STATUS_LABELS = {
    "online": _("online"),
    "removed": _("removed"),
    "changed": _("changed"),
}
STATE_LABELS = {
    "new": _("new"),
    "seen": _("seen"),
    "false-alarm": _("false alarm"),
    "reported": _("reported to the hotline"),
}
ALERT_LABELS = {"pending": _("waiting"), "sent": _("sent"), "failed": _("failed")}
DONE_MESSAGES = {
    "seen": _("Marked as seen."),
    "false-alarm": _("Marked as a false alarm. This picture will not raise an alert again."),
    "reported": _("Reported to the hotline. An analyst will review it."),
    "album-added": _("The album is watched now."),
    "album-removed": _("The album is no longer watched."),
    "contacts": _("Your contacts are saved."),
}
RECHECK_RANGE = _("Check it every 0.2 to 720 hours.")
# The photos page's filters: the photos to register again, and every photo hard to find.
PHOTO_FILTERS = (OUTDATED, ANY_WARNING)
PHOTO_FILTER_LABELS = {OUTDATED: _("to register again"), ANY_WARNING: _("with a warning")}


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


class _Refused(Exception):
    """A page refusal: a status and a message to show (translated)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _organisation(state: ServiceState, caller: Caller) -> Organisation:
    if caller.organisation_id is None:
        raise _Refused(403, NO_ORGANISATION)
    with state.store.session() as s:
        try:
            return get_organisation_by_id(s, caller.organisation_id)
        except OrganisationNotFound:
            raise _Refused(403, NO_ORGANISATION) from None


def _gettext(language: str) -> Callable[[str], str]:
    return CATALOGS[language].gettext


def _render(
    request: Request,
    caller: Caller,
    name: str,
    context: Mapping[str, Any],
    status: int = 200,
    org: Organisation | None = None,
) -> Response:
    language, chosen = choose_language(request, LANGUAGE_COOKIE)
    gettext = _gettext(language)
    cookie = presented_session(request)
    response = page(
        request,
        name,
        {
            **context,
            "_": gettext,
            "lang": language,
            "languages": LANGUAGES,
            "user": caller.user,
            "org": org,
            "csrf_token": csrf_token_for(cookie) if cookie is not None else "",
            "status_labels": {k: gettext(v) for k, v in STATUS_LABELS.items()},
            "state_labels": {k: gettext(v) for k, v in STATE_LABELS.items()},
            "alert_labels": {k: gettext(v) for k, v in ALERT_LABELS.items()},
            "when": _when,
            "path": request.url.path,
        },
        status,
    )
    response.headers.update(ORG_HEADERS)
    response.headers["Content-Language"] = language
    if chosen:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=_LANGUAGE_COOKIE_SECONDS,
            samesite="lax",
            secure=_state(request).settings.secure_cookies,
        )
    return response


def _message(request: Request, caller: Caller, message: str, status: int) -> Response:
    language, _chosen = choose_language(request, LANGUAGE_COOKIE)
    return _render(
        request,
        caller,
        "org_message.html",
        {"message": _gettext(language)(message)},
        status,
    )


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "–"


async def _person(request: Request, caller: Caller) -> Organisation:
    """The caller's organisation, for a signed-in person; _Refused for anyone else."""
    if caller.user is None or presented_session(request) is None:
        raise _Refused(400, PERSON_ONLY)
    org = await run_in_threadpool(_organisation, _state(request), caller)
    await run_in_threadpool(actions.record_visit, _state(request).store, org, caller.user.id)
    return org


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _back(path: str, **query: str) -> RedirectResponse:
    suffix = f"?{urlencode(query)}" if query else ""
    return RedirectResponse(f"{path}{suffix}", status_code=303)


# ---------------------------------------------------------------------- dashboard


def _dashboard(state: ServiceState, org: Organisation, user_id: int) -> dict[str, Any]:
    since = actions.record_visit(state.store, org, user_id)
    summary = actions.dashboard_summary(state.store, org, since)
    latest = actions.stated_sightings(state.store, org, limit=5)
    return {"summary": summary, "latest": latest}


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The organisation's dashboard."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    assert caller.user is not None
    figures = await run_in_threadpool(_dashboard, _state(request), org, caller.user.id)
    return _render(request, caller, "org_dashboard.html", figures, org=org)


# ---------------------------------------------------------------------- sightings


@router.get("/sightings", response_class=HTMLResponse)
async def sightings(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The sightings of the organisation's photos, filtered by status and state."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    query = request.query_params
    status = _choice(query.get("status"), SIGHTING_STATUSES)
    state_filter = _choice(query.get("state"), SIGHTING_STATES)
    rows = await run_in_threadpool(
        lambda: actions.stated_sightings(
            _state(request).store, org, status=status, state=state_filter, limit=PAGE_SIZE
        )
    )
    return _render(
        request,
        caller,
        "org_sightings.html",
        {
            "rows": rows,
            "status": status or "",
            "state": state_filter or "",
            "statuses": SIGHTING_STATUSES,
            "states": SIGHTING_STATES,
        },
        org=org,
    )


def _series_label(at: datetime) -> str:
    return at.strftime("%m-%d %H:%M")


def counter_charts(
    found: OrganisationSighting, gettext: Callable[[str], str]
) -> list[charts.Chart]:
    """The page's views and comments over time, as line charts (none without readings)."""
    out: list[charts.Chart] = []
    counters = found.sighting.counters
    for key, title in (("views", gettext("Views")), ("comments", gettext("Comments"))):
        points = [
            (_series_label(c["observed_at"]), float(c[key]))
            for c in counters
            if c.get(key) is not None
        ]
        if not points:
            continue
        out.append(
            charts.line_chart(
                f"sighting-{found.sighting.id}-{key}",
                f"{title}: {found.sighting.page_url}",
                gettext("The counter on the page each time the crawler read it."),
                points,
                x_label=gettext("Read at (UTC)"),
                y_label=title,
                header=(gettext("Read at (UTC)"), title),
                rows=[(label, int(value)) for label, value in points],
            )
        )
    return out


def _sighting_context(
    state: ServiceState, org: Organisation, sighting_id: int, language: str
) -> dict[str, Any] | None:
    from childguard.protect.tenancy import organisation_sighting

    found = organisation_sighting(state.store, org, sighting_id)
    if found is None:
        return None
    current = actions.states_of(state.store, org, [sighting_id])[sighting_id]
    return {
        "found": found,
        "state": current,
        "charts": counter_charts(found, _gettext(language)),
        "letter_languages": LETTER_LANGUAGES,
    }


async def _sighting_page(
    request: Request,
    caller: Caller,
    org: Organisation,
    sighting_id: int,
    *,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
    partial: bool = False,
) -> Response:
    language, _chosen = choose_language(request, LANGUAGE_COOKIE)
    context = await run_in_threadpool(
        _sighting_context, _state(request), org, sighting_id, language
    )
    if context is None:
        return _message(request, caller, NOT_FOUND, 404)
    gettext = _gettext(language)
    context["done"] = gettext(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None
    context["error"] = error
    name = "_org_sighting_actions.html" if partial else "org_sighting.html"
    return _render(request, caller, name, context, status, org=org)


@router.get("/sightings/{sighting_id}", response_class=HTMLResponse)
async def sighting(
    request: Request, sighting_id: int, caller: Caller = owner("org-admin")
) -> Response:
    """One sighting: where, when, the matched photo, the counters charted, the actions."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    done = request.query_params.get("done")
    return await _sighting_page(request, caller, org, sighting_id, done=done)


async def _act(
    request: Request,
    caller: Caller,
    sighting_id: int,
    action: str,
    run: Callable[[ServiceState, Organisation, dict[str, str]], Any],
) -> Response:
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    values = await _form(request)
    state = _state(request)
    try:
        await run_in_threadpool(run, state, org, values)
    except actions.SightingNotFound:
        return _message(request, caller, NOT_FOUND, 404)
    except (actions.ActionRefused, ReportRejected, ChildguardError) as exc:
        return await _sighting_page(
            request,
            caller,
            org,
            sighting_id,
            error=str(exc),
            status=422,
            partial=_is_htmx(request),
        )
    if _is_htmx(request):
        return await _sighting_page(request, caller, org, sighting_id, done=action, partial=True)
    return _back(f"/org/sightings/{sighting_id}", done=action)


@router.post("/sightings/{sighting_id}/seen")
async def sighting_seen(
    request: Request, sighting_id: int, caller: Caller = owner("org-admin")
) -> Response:
    """Mark the sighting as seen."""

    def run(state: ServiceState, org: Organisation, _values: dict[str, str]) -> Any:
        return actions.mark_seen(state.store, org, sighting_id, actor=caller.actor)

    return await _act(request, caller, sighting_id, "seen", run)


@router.post("/sightings/{sighting_id}/false-alarm")
async def sighting_false_alarm(
    request: Request, sighting_id: int, caller: Caller = owner("org-admin")
) -> Response:
    """Mark the sighting as a false alarm, with the reason (the picture is allowed)."""

    def run(state: ServiceState, org: Organisation, values: dict[str, str]) -> Any:
        done = actions.mark_false_alarm(
            state.store, org, sighting_id, values.get("reason", ""), actor=caller.actor
        )
        state.changed()
        return done

    return await _act(request, caller, sighting_id, "false-alarm", run)


@router.post("/sightings/{sighting_id}/report")
async def sighting_report(
    request: Request, sighting_id: int, caller: Caller = owner("org-admin")
) -> Response:
    """Report the sighting to the hotline."""
    language, _chosen = choose_language(request, LANGUAGE_COOKIE)

    def run(state: ServiceState, org: Organisation, values: dict[str, str]) -> Any:
        return actions.report_to_hotline(
            state.store,
            org,
            sighting_id,
            actor=caller.actor,
            note=values.get("note"),
            language=language,
        )

    return await _act(request, caller, sighting_id, "reported", run)


@router.get("/sightings/{sighting_id}/letter")
async def sighting_letter(
    request: Request, sighting_id: int, caller: Caller = owner("org-admin")
) -> Response:
    """The takedown request letter for the host, as a plain-text download."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    language = request.query_params.get("language", "")
    if language not in LETTER_LANGUAGES:
        language, _chosen = choose_language(request, LANGUAGE_COOKIE)
    try:
        letter = await run_in_threadpool(
            actions.takedown_letter, _state(request).store, org, sighting_id, language=language
        )
    except actions.SightingNotFound:
        return _message(request, caller, NOT_FOUND, 404)
    return letter_response(letter)


# ---------------------------------------------------------------------- albums


def album_charts(monitor: actions.AlbumMonitor, gettext: Callable[[str], str]) -> list[Any]:
    """Per photo of an album: its views line chart."""
    out = []
    for n, (photo, series) in enumerate(sorted(monitor.series.items())):
        points = [(_series_label(at), float(views)) for at, views in series]
        out.append(
            charts.line_chart(
                f"{monitor.name}-{n}",
                photo.rsplit("/", 1)[-1] or photo,
                gettext("Views of this photo on your album page, each time it was read."),
                points,
                x_label=gettext("Read at (UTC)"),
                y_label=gettext("Views"),
                header=(gettext("Read at (UTC)"), gettext("Views")),
                rows=[(label, int(value)) for label, value in points],
            )
        )
    return out


def spike_chart(alert: Any, gettext: Callable[[str], str]) -> charts.Chart:
    """The series a view-spike alert carries, as its evidence."""
    points = [
        (datetime.fromisoformat(at).strftime("%m-%d %H:%M"), float(views))
        for at, views in alert.payload.get("series", [])
    ]
    photo = str(alert.payload.get("photo", ""))
    return charts.line_chart(
        f"spike-{alert.id}",
        gettext("View spike: %(photo)s") % {"photo": photo.rsplit("/", 1)[-1] or photo},
        gettext("The views that raised this alert."),
        points,
        x_label=gettext("Read at (UTC)"),
        y_label=gettext("Views"),
        header=(gettext("Read at (UTC)"), gettext("Views")),
        rows=[(label, int(value)) for label, value in points],
    )


def _albums_context(state: ServiceState, org: Organisation, language: str) -> dict[str, Any]:
    gettext = _gettext(language)
    monitors = actions.album_monitors(state.store, org)
    return {
        "albums": [
            {
                "monitor": m,
                "charts": album_charts(m, gettext),
                "spikes": [(a, spike_chart(a, gettext)) for a in m.spike_alerts],
            }
            for m in monitors
        ]
    }


async def _albums_page(
    request: Request,
    caller: Caller,
    org: Organisation,
    *,
    done: str | None = None,
    error: str | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    language, _chosen = choose_language(request, LANGUAGE_COOKIE)
    context = await run_in_threadpool(_albums_context, _state(request), org, language)
    context["done"] = _gettext(language)(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None
    context["error"] = error
    context["values"] = dict(values or {})
    return _render(request, caller, "org_albums.html", context, status, org=org)


@router.get("/albums", response_class=HTMLResponse)
async def albums(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The organisation's album monitors with their views charted and the spike alerts."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    return await _albums_page(request, caller, org, done=request.query_params.get("done"))


@router.post("/albums")
async def albums_add(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """Add an album page with its site profile."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    values = await _form(request)
    hours = values.get("recheck_hours", "6").strip()
    try:
        every = int(float(hours) * 3600) if hours else 6 * 3600
    except ValueError:
        every = -1
    if not 600 <= every <= 30 * 86400:
        language, _chosen = choose_language(request, LANGUAGE_COOKIE)
        message = _gettext(language)(RECHECK_RANGE)
        return await _albums_page(request, caller, org, error=message, values=values, status=422)
    try:
        await run_in_threadpool(
            lambda: actions.add_album_monitor(
                _state(request).store,
                org,
                values.get("url", ""),
                item=values.get("item", ""),
                item_views=values.get("item_views", ""),
                item_image=values.get("item_image", "img") or "img",
                recheck_every=every,
                actor=caller.actor,
            )
        )
    except actions.ActionRefused as exc:
        return await _albums_page(request, caller, org, error=str(exc), values=values, status=422)
    return _back("/org/albums", done="album-added")


@router.post("/albums/{name}/remove")
async def albums_remove(
    request: Request, name: str, caller: Caller = owner("org-admin")
) -> Response:
    """Stop watching one of the organisation's album pages."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    try:
        await run_in_threadpool(
            actions.remove_album_monitor, _state(request).store, org, name, actor=caller.actor
        )
    except actions.ActionRefused:
        return _message(request, caller, _("There is no such album among yours."), 404)
    return _back("/org/albums", done="album-removed")


# ---------------------------------------------------------------------- contacts


async def _contacts_page(
    request: Request,
    caller: Caller,
    org: Organisation,
    *,
    done: str | None = None,
    error: str | None = None,
    results: list[actions.ChannelResult] | None = None,
    values: Mapping[str, str] | None = None,
    status: int = 200,
    partial: str | None = None,
) -> Response:
    language, _chosen = choose_language(request, LANGUAGE_COOKIE)
    context = {
        "done": _gettext(language)(DONE_MESSAGES[done]) if done in DONE_MESSAGES else None,
        "error": error,
        "results": results,
        "values": dict(values or {}),
    }
    return _render(request, caller, partial or "org_contacts.html", context, status, org=org)


@router.get("/contacts", response_class=HTMLResponse)
async def contacts(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The organisation's alert emails and webhook."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    return await _contacts_page(request, caller, org, done=request.query_params.get("done"))


async def _update_contacts(request: Request, caller: Caller, **change: Any) -> Response:
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    state = _state(request)
    try:
        await run_in_threadpool(
            lambda: actions.update_contacts(
                state.store, org, actor=caller.actor, check_url=url_check(state), **change
            )
        )
    except actions.ActionRefused as exc:
        values = {
            "emails": "\n".join(change.get("emails") or []),
            **({"webhook_url": change["webhook_url"]} if change.get("webhook_url") else {}),
        }
        return await _contacts_page(request, caller, org, error=str(exc), values=values, status=422)
    return _back("/org/contacts", done="contacts")


@router.post("/contacts")
async def contacts_save(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """Save the alert emails (one a line) and the webhook address."""
    values = await _form(request)
    emails = [
        e.strip() for e in values.get("emails", "").replace(",", "\n").splitlines() if e.strip()
    ]
    webhook = values.get("webhook_url", "").strip() or None
    return await _update_contacts(
        request, caller, emails=emails, webhook_url=webhook, remove_webhook=webhook is None
    )


@router.post("/contacts/remove-email")
async def contacts_remove_email(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """Remove one alert email address."""
    values = await _form(request)
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    gone = values.get("email", "")
    return await _update_contacts(request, caller, emails=[e for e in org.emails if e != gone])


@router.post("/contacts/remove-webhook")
async def contacts_remove_webhook(
    request: Request, caller: Caller = owner("org-admin")
) -> Response:
    """Remove the webhook."""
    return await _update_contacts(request, caller, remove_webhook=True)


@router.post("/contacts/test")
async def contacts_test(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """Send a test alert on each channel and show how each took it."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    state = _state(request)
    partial = "_org_test_results.html" if _is_htmx(request) else None
    try:
        results = await run_in_threadpool(
            lambda: actions.send_test_alert(
                org,
                alert_transport(),
                actor=caller.actor,
                store=state.store,
                check_url=url_check(state),
            )
        )
    except actions.ActionRefused as exc:
        return await _contacts_page(
            request, caller, org, error=str(exc), status=422, partial=partial
        )
    return await _contacts_page(request, caller, org, results=results, partial=partial)


# ---------------------------------------------------------------------- alerts


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The organisation's alerts: sent, waiting (with the next try) and failed (with the last
    error)."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    status = _choice(request.query_params.get("status"), ALERT_STATUSES)
    rows = await run_in_threadpool(
        actions.organisation_alerts,
        _state(request).store,
        org,
        [status] if status else None,
    )
    return _render(
        request,
        caller,
        "org_alerts.html",
        {"rows": rows, "status": status or "", "statuses": ALERT_STATUSES},
        org=org,
    )


# ---------------------------------------------------------------------- photos


@router.get("/photos", response_class=HTMLResponse)
async def photos(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The organisation's registered photos, PAGE_SIZE a page in registration order (`after`:
    the last id of the page before; `warning`: one of PHOTO_FILTERS, the photos with it only;
    another value shows every photo), each with its warning where it has one."""
    try:
        org = await _person(request, caller)
    except _Refused as exc:
        return _message(request, caller, exc.message, exc.status)
    after = request.query_params.get("after", "")
    after_id = int(after) if after.isdigit() and len(after) <= _MAX_ID_DIGITS else None
    warning = _choice(request.query_params.get("warning"), PHOTO_FILTERS)

    def listed() -> tuple[list[tuple[ProtectedPhoto, PhotoWarning | None]], int | None]:
        store = _state(request).store
        rows = photos_page(store, org, after_id=after_id, limit=PAGE_SIZE + 1, warning=warning)
        shown = rows[:PAGE_SIZE]
        more = shown[-1].id if len(rows) > PAGE_SIZE else None
        return [(p, photo_warning(p)) for p in shown], more

    rows, next_after = await run_in_threadpool(listed)
    return _render(
        request,
        caller,
        "org_photos.html",
        {
            "rows": rows,
            "next_after": next_after,
            "chosen": warning or "",
            "warning_labels": WARNING_LABELS,
            "filters": PHOTO_FILTERS,
            "filter_labels": PHOTO_FILTER_LABELS,
        },
        org=org,
    )
