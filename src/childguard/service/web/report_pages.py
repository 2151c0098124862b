# Owns the public report pages: GET|POST /report and GET|POST /report/status, in four languages.
"""The public report form, server-rendered, in Dutch, French, German and English.

The language comes from `?lang=` (remembered in a cookie for the report pages), else that
cookie, else the browser's `Accept-Language`, else English (`childguard.service.web.i18n`,
whose catalogs merge this form's `messages.po` with the other pages' catalogs).

`POST /report` files a report through `childguard.hotline.reports` (channel `web`). Only a URL
is required; a description, hints, several URLs (one per line) and a feedback email are
optional. The reporter is shown a random tracking code once, for `/report/status`, which
shows per-URL states and never what was found. Abuse control: the form carries a one-time
token matched to a cookie, a form sent from another site is refused, a body over
`FORM_MAX_BYTES` is refused, a filled-in honeypot field is answered as if accepted and nothing
is stored, and the service's per-client rate limit applies. No address or user agent is read
here, and the access log leaves them out for these paths.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from babel.dates import format_datetime
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from childguard.hotline.reports import (
    MAX_DESCRIPTION,
    MAX_URL_LENGTH,
    MAX_URLS,
    ReportRejected,
    new_tracking_code,
    report_status,
)
from childguard.service.api.reports import file_report
from childguard.service.api.session import cross_site
from childguard.service.auth import CSRF_FIELD, Caller, public
from childguard.service.web.i18n import CATALOGS, LANGUAGES
from childguard.service.web.i18n import choose_language as choose_area_language
from childguard.service.web.pages import page

router = APIRouter(tags=["pages"], include_in_schema=False)

LANGUAGE_COOKIE = "childguard_lang"
FORM_COOKIE = "childguard_report_form"
HONEYPOT_FIELD = "website"
FORM_MAX_BYTES = 64 * 1024
_LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
_FORM_COOKIE_SECONDS = 2 * 3600


def _(message: str) -> str:
    """Marks `message` for the catalogs; it is translated where it is shown."""
    return message


SITE_TYPES = {
    "website": _("Website"),
    "forum": _("Forum"),
    "social-network": _("Social network"),
    "image-host": _("Image host"),
    "file-sharing": _("File sharing"),
    "chat": _("Chat or messaging"),
    "other": _("Other"),
}
CONTENT_TYPES = {
    "images": _("Images"),
    "videos": _("Videos"),
    "images-and-videos": _("Images and videos"),
    "text": _("Text"),
    "other": _("Other"),
}
STATE_LABELS = {
    "received": _("Received"),
    "processing": _("Being processed"),
    "assessed": _("Assessed"),
    "fetch-failed": _("Could not be fetched; we will try again"),
}
# What each refusal of `create_report` tells the reporter, in their language.
REFUSALS = {
    "no-urls": _("Please enter at least one web address."),
    "too-many-urls": _("A report can hold at most %(max)s web addresses."),
    "url-too-long": _("Address %(position)s is too long (at most %(max)s characters)."),
    "url-scheme": _("Address %(position)s (%(url)s) must start with http:// or https://."),
    "url-credentials": _(
        "Address %(position)s (%(url)s) contains a user name or password; please leave them out."
    ),
    "url-host": _("Address %(position)s (%(url)s) has no host name."),
    "url-invalid": _("Address %(position)s (%(url)s) is not a valid web address."),
    "description-too-long": _("The description is too long (at most %(max)s characters)."),
    "email-invalid": _("The email address is not valid."),
    "hint-invalid": _("Please choose the type of site and content from the lists."),
}
FORM_EXPIRED = _("The form had expired or came from another site; please try again.")
TOO_LARGE = _("The report is too large.")
NOT_ACCEPTED = _("The report could not be accepted.")
NO_SUCH_CODE = _("No report has this tracking code. Please check it and try again.")


def choose_language(request: Request) -> tuple[str, bool]:
    """The page's language, and whether it was chosen with `?lang=` (to remember it)."""
    return choose_area_language(request, LANGUAGE_COOKIE)


def _render(
    request: Request,
    name: str,
    language: str,
    context: Mapping[str, Any],
    *,
    remember: bool,
    status: int = 200,
) -> HTMLResponse:
    gettext: Callable[[str], str] = CATALOGS[language].gettext
    response = page(
        request,
        name,
        {
            **context,
            "_": gettext,
            "lang": language,
            "languages": LANGUAGES,
            "here": request.url.path,
        },
        status,
    )
    response.headers["Content-Language"] = language
    if remember:
        settings = request.app.state.service.settings
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=_LANGUAGE_COOKIE_SECONDS,
            path="/report",
            httponly=True,
            samesite="lax",
            secure=settings.secure_cookies,
        )
    return response


def _form(
    request: Request,
    language: str,
    *,
    remember: bool,
    values: Mapping[str, str] | None = None,
    error: str = "",
    status: int = 200,
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _render(
        request,
        "report.html",
        language,
        {
            "form_token": token,
            "values": dict(values or {}),
            "error": error,
            "site_types": SITE_TYPES,
            "content_types": CONTENT_TYPES,
            "max_urls": MAX_URLS,
            "max_description": MAX_DESCRIPTION,
            "max_urls_chars": MAX_URLS * (MAX_URL_LENGTH + 1),
            "honeypot": HONEYPOT_FIELD,
        },
        remember=remember,
        status=status,
    )
    settings = request.app.state.service.settings
    response.set_cookie(
        FORM_COOKIE,
        token,
        max_age=_FORM_COOKIE_SECONDS,
        path="/report",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    return response


def refusal_text(exc: ReportRejected, language: str) -> str:
    """A refused report's reason in `language`."""
    gettext = CATALOGS[language].gettext
    template = REFUSALS.get(exc.code)
    if template is None:
        return gettext(NOT_ACCEPTED)
    limits = {
        "too-many-urls": MAX_URLS,
        "url-too-long": MAX_URL_LENGTH,
        "description-too-long": MAX_DESCRIPTION,
    }
    url = exc.url or ""
    shown = url if len(url) <= 80 else url[:77] + "..."
    return gettext(template) % {
        "position": exc.position or "",
        "url": shown,
        "max": limits.get(exc.code, ""),
    }


def _form_language(values: Mapping[str, str] | None, language: str) -> str:
    """The language the form was shown in (its hidden `lang` field), else `language`."""
    shown = (values or {}).get("lang", "")
    return shown if shown in LANGUAGES else language


async def _read_form(request: Request) -> dict[str, str] | None:
    """The fields of an urlencoded form body; None when it is over FORM_MAX_BYTES."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > FORM_MAX_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > FORM_MAX_BYTES:
            return None
    fields: dict[str, str] = {}
    for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


@router.get("/report", response_class=HTMLResponse)
async def report_page(request: Request, _caller: Caller = public()) -> HTMLResponse:
    """The report form."""
    language, remember = choose_language(request)
    return _form(request, language, remember=remember)


@router.post("/report", response_class=HTMLResponse)
async def report_submit(request: Request, _caller: Caller = public()) -> Response:
    """File a report from the form: the tracking code, or the form again with the reason."""
    language, remember = choose_language(request)
    values = await _read_form(request)
    language = _form_language(values, language)
    gettext = CATALOGS[language].gettext
    if values is None:
        return _form(request, language, remember=remember, error=gettext(TOO_LARGE), status=413)
    expected = request.cookies.get(FORM_COOKIE, "")
    presented = values.get(CSRF_FIELD, "")
    if cross_site(request) or not expected or not hmac.compare_digest(expected, presented):
        return _form(
            request,
            language,
            remember=remember,
            values=values,
            error=gettext(FORM_EXPIRED),
            status=403,
        )
    urls = values.get("urls", "").splitlines()
    if values.get(HONEYPOT_FIELD, "").strip():
        # A bot filled in the hidden field: answer as if accepted, and store nothing.
        kept = [u for u in urls if u.strip()][:MAX_URLS]
        return _done(request, language, remember, new_tracking_code(), max(1, len(kept)))
    site_type = values.get("site_type", "")
    content_type = values.get("content_type", "")
    if (site_type and site_type not in SITE_TYPES) or (
        content_type and content_type not in CONTENT_TYPES
    ):
        return _form(
            request,
            language,
            remember=remember,
            values=values,
            error=gettext(REFUSALS["hint-invalid"]),
            status=422,
        )
    hints = {k: v for k, v in (("site_type", site_type), ("content_type", content_type)) if v}
    state = request.app.state.service
    try:
        new = await run_in_threadpool(
            file_report,
            state,
            urls,
            channel="web",
            reporter=None,
            description=values.get("description"),
            hints=hints or None,
            email=values.get("email"),
            language=language,
        )
    except ReportRejected as exc:
        return _form(
            request,
            language,
            remember=remember,
            values=values,
            error=refusal_text(exc, language),
            status=422,
        )
    return _done(request, language, remember, new.tracking_code, len(new.url_ids))


def _done(
    request: Request, language: str, remember: bool, tracking_code: str, count: int
) -> HTMLResponse:
    response = _render(
        request,
        "report_done.html",
        language,
        {"tracking_code": tracking_code, "count": count},
        remember=remember,
        status=201,
    )
    response.delete_cookie(FORM_COOKIE, path="/report")
    return response


@router.get("/report/status", response_class=HTMLResponse)
async def status_page(request: Request, _caller: Caller = public()) -> HTMLResponse:
    """The form that asks for a tracking code."""
    language, remember = choose_language(request)
    return _render(request, "report_status.html", language, {}, remember=remember)


@router.post("/report/status", response_class=HTMLResponse)
async def status_lookup(request: Request, _caller: Caller = public()) -> HTMLResponse:
    """The per-URL states of the report with the tracking code sent."""
    language, remember = choose_language(request)
    values = await _read_form(request)
    language = _form_language(values, language)
    gettext = CATALOGS[language].gettext
    if values is None:
        return _render(
            request,
            "report_status.html",
            language,
            {"error": gettext(TOO_LARGE)},
            remember=remember,
            status=413,
        )
    code = values.get("tracking_code", "")[:100]
    state = request.app.state.service
    found = await run_in_threadpool(report_status, state.store, code)
    if found is None:
        return _render(
            request,
            "report_status.html",
            language,
            {"error": gettext(NO_SUCH_CODE)},
            remember=remember,
            status=404,
        )
    return _render(
        request,
        "report_status.html",
        language,
        {
            "report": found,
            "received": _when(found.received_at, language),
            "state_labels": STATE_LABELS,
        },
        remember=remember,
    )


def _when(at: datetime, language: str) -> str:
    return format_datetime(at, format="long", tzinfo=None, locale=language)
