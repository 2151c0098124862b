# Owns the analyst's review pages under /hotline: the queue, the item page, previews, reveals.
"""The hotline's review in the browser, for a signed-in user with the `analyst` role, thin
over `childguard.hotline.review`, `childguard.hotline.assessments` and
`childguard.hotline.previews`.

`GET /hotline/queue` locks the next item to the analyst (`next_item`) and sends the browser to
its page; it says so when the queue is empty, and refuses with a break message at the day's
viewing cap. `GET /hotline/items/{id}` shows the item to the analyst holding its lock (anyone
else: 403): signals, bank matches with provenance, places and reports, host trace, earlier
assessments, the facts form with the labels every scheme derives from it, and the preview.
`GET /hotline/items/{id}/preview.png` is the preview, blurred and greyscale at the analyst's
preference; `?clear=1` gives it unblurred only after `POST /hotline/items/{id}/reveal` (a
deliberate, audited reveal) within the same lock, and each clear preview is audited too.
Votes, skips and releases are form posts that send the browser back to the queue; the page's
script (`static/review.js`, served by `GET /hotline/static/{name}`) gives every action a key,
asks `POST /hotline/labels` for the derived labels as the facts change, and reports the
seconds on screen to `POST /hotline/exposure`.

The pages are for a person: an API key, even one with the `analyst` role, gets 400. To a
browser (an `Accept` of `text/html`), `error_page` answers the refusals of these paths as
pages: an unsigned browser's 401 is a redirect to `/login?next=...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from childguard.accounts import csrf_token_for
from childguard.errors import InputFormatError, MediaError
from childguard.hotline import assessments, previews, review
from childguard.hotline.crypto import derive_key
from childguard.hotline.evidence import EVIDENCE_KEY_PURPOSE, EvidenceMissing, open_evidence
from childguard.hotline.schemes import AGE_BANDS, FLAGS, SEVERITIES, InvalidFacts, derive
from childguard.hotline.schemes.facts import Facts
from childguard.service.auth import Caller, owner, presented_session
from childguard.service.hotline_tasks import exposure_settings, preview_default, vote_settings
from childguard.service.state import ServiceState
from childguard.service.web.pages import PAGE_HEADERS, page
from childguard.store.hotline_models import ReportUrl

router = APIRouter(prefix="/hotline", tags=["pages"], include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {".js": "text/javascript; charset=utf-8"}
REVIEW_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; img-src 'self'; connect-src 'self'; "
        "style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'"
    ),
}
PERSON_ONLY = "the review pages are for a signed-in analyst: sign in at /login"
EXPOSURE_REPORT_SECONDS = 15
# The keys of the facts form: age bands 1-5, severities, and a letter per context flag.
AGE_KEYS = dict(zip(AGE_BANDS, "12345", strict=True))
SEVERITY_KEYS = {"A": "a", "B": "b", "C": "c", "posed": "p", "none": "n"}
FLAG_KEYS = {
    "harvested": "h",
    "nationally_illegal": "i",
    "generated": "g",
    "self_produced": "s",
    "live_streamed": "l",
    "viral": "v",
    "meme": "m",
}
SHORTCUTS = (
    ("1-5", "apparent age band"),
    ("a b c p n", "severity: A, B, C, posed, none"),
    ("h i g s l v m", "context flags (toggle)"),
    ("Enter", "submit the vote; the next item loads"),
    ("r", "reveal: type an optional reason, Enter"),
    ("k", "skip: type the reason, Enter"),
    ("u", "release the item back to the queue"),
    ("x", "next item (when the queue page says it is empty)"),
    ("Esc", "leave a text field"),
)
if set(FLAG_KEYS) != set(FLAGS) or set(SEVERITY_KEYS) != set(SEVERITIES):
    raise RuntimeError("every fact needs a key on the review page")


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _cap(request: Request) -> review.ExposureSettings:
    return exposure_settings(_state(request).settings)


def _preview_default(request: Request) -> review.PreviewPreferences:
    return preview_default(_state(request).settings)


def _evidence_key(state: ServiceState) -> bytes:
    return derive_key(state.secret_key(), EVIDENCE_KEY_PURPOSE)


def wants_page(request: Request) -> bool:
    """Whether a refusal of this request should be a page: a browser asking for one of the
    review pages or the organisation's pages (not their static files)."""
    path = request.url.path
    on_pages = path in ("/hotline", "/org") or path.startswith(("/hotline/", "/org/"))
    if path.startswith("/org/static/"):
        return False
    return on_pages and "text/html" in request.headers.get("accept", "")


def _render(
    request: Request, name: str, context: Mapping[str, Any], status: int = 200
) -> HTMLResponse:
    response = page(request, name, {"shortcuts": SHORTCUTS, **context}, status)
    response.headers.update(REVIEW_HEADERS)
    return response


def _message(request: Request, title: str, message: str, status: int, **extra: Any) -> Response:
    return _render(
        request, "review_message.html", {"title": title, "message": message, **extra}, status
    )


def error_page(request: Request, exc: StarletteHTTPException) -> Response:
    """A refusal of a review page, as a page: an unsigned browser goes to sign in."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if exc.status_code == 401 and request.method == "GET":
        return RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
    titles = {401: "Sign in", 403: "Not for you", 404: "Not found"}
    return _message(
        request,
        titles.get(exc.status_code, "Refused"),
        str(exc.detail),
        exc.status_code,
        sign_in=f"/login?next={quote(target, safe='/')}" if exc.status_code == 401 else None,
    )


def _person(request: Request, caller: Caller) -> tuple[int, str] | Response:
    """The analyst's user id and the session's CSRF token, or the refusal for a key."""
    cookie = presented_session(request)
    if caller.user is None or cookie is None:
        return _message(request, "Sign in", PERSON_ONLY, 400, sign_in="/login?next=/hotline")
    return caller.user.id, csrf_token_for(cookie)


def _break_page(request: Request, exposure: review.Exposure) -> Response:
    minutes = exposure.seconds // 60
    return _message(
        request,
        "Time for a break",
        f"You have had {minutes} minutes of content on screen today, the day's cap. Take a "
        "break: the queue opens again tomorrow.",
        429,
        exposure=exposure,
    )


@router.get("", response_class=HTMLResponse)
async def home(request: Request, caller: Caller = owner("analyst")) -> Response:
    """The review's start: today's exposure, the preview preferences, the shortcuts."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    user_id, csrf = person
    store = _state(request).store
    exposure = await run_in_threadpool(review.exposure_today, store, user_id, _cap(request))
    chosen = await run_in_threadpool(
        review.preview_preferences, store, user_id, _preview_default(request)
    )
    return _render(
        request,
        "review_home.html",
        {"user": caller.user, "csrf_token": csrf, "exposure": exposure, "preferences": chosen},
    )


@router.post("/preferences")
async def preferences(request: Request, caller: Caller = owner("analyst")) -> Response:
    """Keep the analyst's blur level (0-10) and greyscale choice, then back to the start."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    form = await request.form()
    raw = form.get("blur", "")
    if not isinstance(raw, str) or not raw.isdigit() or not 0 <= int(raw) <= 10:
        return _message(request, "Not saved", "the blur level must be a whole number 0-10", 422)
    await run_in_threadpool(
        lambda: review.set_preview_preferences(
            _state(request).store,
            person[0],
            blur=int(raw),
            greyscale=form.get("greyscale") == "on",
        )
    )
    return RedirectResponse("/hotline", status_code=303)


@router.get("/queue", response_class=HTMLResponse)
async def queue(request: Request, caller: Caller = owner("analyst")) -> Response:
    """Take the next item and go to its page; say so when the queue is empty; refuse at the
    day's viewing cap."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    user_id, csrf = person
    store = _state(request).store
    exposure = await run_in_threadpool(review.exposure_today, store, user_id, _cap(request))
    if exposure.over_cap:
        return _break_page(request, exposure)
    item_id = await run_in_threadpool(review.next_item, store, user_id)
    if item_id is None:
        return _render(
            request,
            "review_empty.html",
            {"user": caller.user, "csrf_token": csrf, "exposure": exposure},
        )
    return RedirectResponse(f"/hotline/items/{item_id}", status_code=303)


def _traces(store: Any, item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The host traces of the URLs of the reports the item came from."""
    report_ids = sorted({p["report_id"] for p in item["places"] if p["report_id"] is not None})
    if not report_ids:
        return []
    with store.session() as session:
        rows = session.scalars(
            select(ReportUrl)
            .where(ReportUrl.report_id.in_(report_ids), ReportUrl.trace.is_not(None))
            .order_by(ReportUrl.report_id, ReportUrl.position, ReportUrl.id)
        ).all()
        return [{"report_id": row.report_id, "url": row.url, **(row.trace or {})} for row in rows]


def _facts_choices() -> dict[str, Any]:
    return {
        "age_bands": [(band, AGE_KEYS[band]) for band in AGE_BANDS],
        "severities": [(s, SEVERITY_KEYS[s]) for s in SEVERITIES],
        "flags": [(f, FLAG_KEYS[f]) for f in FLAGS],
    }


@router.get("/items/{item_id}", response_class=HTMLResponse)
async def item_page(request: Request, item_id: int, caller: Caller = owner("analyst")) -> Response:
    """The item, to the analyst holding its lock."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    user_id, csrf = person
    store = _state(request).store

    cap = _cap(request)
    default = _preview_default(request)

    def gather() -> dict[str, Any] | None:
        if not review.holds_lock(store, user_id, item_id):
            return None
        item = review.item_view(store, item_id)
        return {
            "item": item,
            "traces": _traces(store, item),
            "revealed": previews.revealed_in_lock(store, user_id, item_id),
            "exposure": review.exposure_today(store, user_id, cap),
            "preferences": review.preview_preferences(store, user_id, default),
        }

    try:
        found = await run_in_threadpool(gather)
    except review.ItemNotFound:
        found = None
    if found is None:
        return _message(
            request,
            "Not for you",
            f"item {item_id} is not locked to you: take items from the queue",
            403,
            queue=True,
        )
    if found["exposure"].over_cap:
        return _break_page(request, found["exposure"])
    return _render(
        request,
        "review_item.html",
        {
            **found,
            **_facts_choices(),
            "user": caller.user,
            "csrf_token": csrf,
            "report_every": EXPOSURE_REPORT_SECONDS,
        },
    )


@router.get("/items/{item_id}/preview.png")
async def preview(
    request: Request, item_id: int, clear: int = 0, caller: Caller = owner("analyst")
) -> Response:
    """The item's preview: blurred (and greyscale) at the analyst's level; with `clear=1`
    unblurred, only after this analyst revealed it within the lock (audited)."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    user_id, _csrf = person
    state = _state(request)
    store = state.store

    def make() -> Response:
        if not review.holds_lock(store, user_id, item_id):
            return _message(request, "Not for you", f"item {item_id} is not locked to you", 403)
        if clear and not previews.revealed_in_lock(store, user_id, item_id):
            return _message(
                request, "Not revealed", "reveal the item before its clear preview", 403
            )
        try:
            data = open_evidence(store, _evidence_key(state), item_id)
            png, _strip = previews.preview_png(
                data,
                review.preview_preferences(store, user_id, preview_default(state.settings)),
                clear=bool(clear),
            )
        except EvidenceMissing:
            return _message(request, "No evidence", f"item {item_id} has no evidence", 404)
        except MediaError as exc:
            return _message(request, "No preview", f"the media cannot be shown: {exc}", 422)
        if clear:
            previews.record_clear_view(store, user_id, item_id)
        return Response(png, media_type="image/png", headers=dict(REVIEW_HEADERS))

    return await run_in_threadpool(make)


def _form_values(form: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def facts_from_form(values: Mapping[str, str]) -> dict[str, Any]:
    """The facts of the item page's form fields."""
    return {
        "age_band": values.get("age_band", ""),
        "severity": values.get("severity", ""),
        **{flag: values.get(flag) == "on" for flag in FLAGS},
    }


@router.post("/labels")
async def labels(request: Request, caller: Caller = owner("analyst")) -> Response:
    """The outcome and every scheme's labels the form's facts give, before submitting."""
    values = _form_values(await request.form())
    try:
        derivation = derive(Facts.from_dict(facts_from_form(values)))
    except InvalidFacts as exc:
        return JSONResponse({"message": str(exc)}, status_code=422)
    return JSONResponse(
        {
            "outcome": derivation.outcome,
            "labels": [label.to_dict() for label in derivation.labels],
        }
    )


@router.post("/items/{item_id}/vote")
async def vote(request: Request, item_id: int, caller: Caller = owner("analyst")) -> Response:
    """Record the analyst's facts as their vote; then the next item."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    values = _form_values(await request.form())
    state = _state(request)
    try:
        result = await run_in_threadpool(
            assessments.record_vote,
            state.store,
            item_id,
            person[0],
            facts_from_form(values),
            values.get("note"),
            vote_settings(state.settings),
        )
    except InvalidFacts as exc:
        return _message(request, "Not recorded", str(exc), 422, back=f"/hotline/items/{item_id}")
    except (review.ItemNotFound, assessments.ItemNotOpen, assessments.AlreadyVoted) as exc:
        return _message(request, "Not recorded", str(exc), 409, queue=True)
    except assessments.LockedByOther as exc:
        return _message(request, "Not for you", str(exc), 403, queue=True)
    if result.banked:
        await run_in_threadpool(state.changed)
    return RedirectResponse("/hotline/queue", status_code=303)


@router.post("/items/{item_id}/skip")
async def skip(request: Request, item_id: int, caller: Caller = owner("analyst")) -> Response:
    """Give the item back with a reason; then the next item."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    values = _form_values(await request.form())
    try:
        skipped = await run_in_threadpool(
            review.skip, _state(request).store, person[0], item_id, values.get("reason", "")
        )
    except InputFormatError as exc:
        return _message(request, "Not skipped", str(exc), 422, back=f"/hotline/items/{item_id}")
    if not skipped:
        return _message(request, "Not for you", f"item {item_id} is not locked to you", 403)
    return RedirectResponse("/hotline/queue", status_code=303)


@router.post("/items/{item_id}/release")
async def release(request: Request, item_id: int, caller: Caller = owner("analyst")) -> Response:
    """Give the item back to the queue and stop: to the review's start."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    await run_in_threadpool(review.release, _state(request).store, person[0], item_id)
    return RedirectResponse("/hotline", status_code=303)


@router.post("/items/{item_id}/reveal")
async def reveal(request: Request, item_id: int, caller: Caller = owner("analyst")) -> Response:
    """A deliberate reveal, with an optional reason (audited); then the item, clear."""
    person = _person(request, caller)
    if isinstance(person, Response):
        return person
    values = _form_values(await request.form())
    store = _state(request).store
    try:
        await run_in_threadpool(
            review.reveal, store, person[0], item_id, values.get("reason"), _cap(request)
        )
    except review.ExposureCapReached:
        exposure = await run_in_threadpool(review.exposure_today, store, person[0], _cap(request))
        return _break_page(request, exposure)
    except (review.LockNotHeld, review.ItemNotFound) as exc:
        return _message(request, "Not for you", str(exc), 403, queue=True)
    except InputFormatError as exc:
        return _message(request, "Not revealed", str(exc), 422, back=f"/hotline/items/{item_id}")
    return RedirectResponse(f"/hotline/items/{item_id}", status_code=303)


@router.post("/exposure")
async def exposure(request: Request, caller: Caller = owner("analyst")) -> Response:
    """Add the seconds of content on screen the page reports (0-3600): today's exposure."""
    if caller.user is None:
        return JSONResponse({"message": PERSON_ONLY}, status_code=400)
    raw = _form_values(await request.form()).get("seconds", "")
    if not raw.isdigit() or not 0 <= int(raw) <= 3600:
        return JSONResponse({"message": "seconds must be a whole number 0-3600"}, 422)
    today = await run_in_threadpool(
        review.record_exposure, _state(request).store, caller.user.id, int(raw), _cap(request)
    )
    return JSONResponse(today.to_dict())


@router.get("/static/{name}")
async def static(name: str, _: Caller = owner("analyst")) -> Response:
    """The review pages' own script (vendored; no CDN)."""
    path = STATIC_DIR / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or path.parent != STATIC_DIR or not path.is_file():
        return JSONResponse({"message": f"no static file {name!r}"}, status_code=404)
    return Response(
        path.read_bytes(),
        media_type=kind,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
