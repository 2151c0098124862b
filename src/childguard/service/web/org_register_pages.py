# Owns the organisation's pages that work on the device: /org/photos/add (register photos by
# signature), /org/photos/check (the check before publishing), and the static files under
# /org/static/ they and the other organisation pages load.
"""Registration on the device, server-rendered, in Dutch, French, German and English.

`GET /org/photos/add` (owner `org-admin`) is a form that picks photos or a whole folder; the
page's script (`static/org/add.js`) hands each file to a Web Worker
(`static/org/register_worker.js`) that computes its signature in the browser (PDQ views and
ORB features with the vendored OpenCV.js, MD5/SHA-1/SHA-256 of the bytes) and sends only the
signatures and metadata, in batches, to `POST /v1/organisation/photos/signatures`. The photo
bytes never leave the browser.

`GET /org/photos/check` runs the check before publishing in the browser (`static/org/
prepublish.js`, the rules of `childguard.protect.prepublish`) and saves a cleaned copy locally;
it uploads nothing.

`GET /org/static/{path}` serves files under `static/org/` and `static/vendor/` only, with their
media types (`application/wasm` included) and `nosniff`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from childguard.accounts import csrf_token_for
from childguard.protect.organisations import OrganisationNotFound, get_organisation_by_id
from childguard.protect.register import FEW, OUTDATED, PLAIN
from childguard.service.auth import Caller, owner, presented_session
from childguard.service.web.i18n import CATALOGS, LANGUAGES, choose_language
from childguard.service.web.pages import PAGE_HEADERS, page
from childguard.store.protect_models import Organisation

router = APIRouter(prefix="/org", tags=["pages"], include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_AREAS = ("org", "vendor")
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".LICENSE": "text/plain; charset=utf-8",
}
LANGUAGE_COOKIE = "childguard_lang"
_LANGUAGE_COOKIE_SECONDS = 365 * 24 * 3600
# The pages run scripts of this site only; the worker compiles OpenCV.js's WebAssembly; the
# only requests are to this site.
REGISTER_HEADERS = {
    **PAGE_HEADERS,
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; "
        "connect-src 'self'; img-src 'self'; style-src 'unsafe-inline'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}
# A worker's own policy comes with its script. OpenCV.js (Emscripten's embind) builds its
# function wrappers with `new Function`, so the registration worker, and only it, may evaluate
# strings; it has no DOM and may still only talk to this site. The pages never may.
SCRIPT_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self'"
    ),
}
WORKERS = frozenset({"org/register_worker.js"})
WORKER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; connect-src 'self'"
    ),
}


def _(message: str) -> str:
    """Marks `message` for the catalogs; it is translated where it is shown."""
    return message


# The warnings of `protect.register.photo_warning`, by code, as the pages say them (the
# registration's rows here, the list of registered photos in `org_pages`).
WARNING_LABELS = {
    OUTDATED: _(
        "signed by an earlier version: square crops and grid cells of it may go unnoticed; "
        "register it again from its original"
    ),
    PLAIN: _("too plain to be found reliably: even a re-saved copy may go unnoticed"),
    FEW: _("few keypoints: whole copies are found, but crops, grids and overlays may go unnoticed"),
}
# Messages the page's script shows, translated on the server and handed to it; a warning's
# is `warning_<code>` (`-` as `_`).
SCRIPT_MESSAGES = {
    "waiting": _("Waiting"),
    "computing": _("Computing the signature on this device…"),
    "computed": _("Signature computed; sending it"),
    "registered": _("Registered"),
    "already": _("Already registered"),
    "resigned": _("Already registered; signed anew, as its earlier signature was out of date"),
    "failed": _("Not registered"),
    **{f"warning_{code.replace('-', '_')}": text for code, text in WARNING_LABELS.items()},
    "warned": _("%(warned)s may be hard to find; see their rows."),
    "decode": _("This file could not be read as a photo: %s"),
    "refused": _("The service refused the signatures: %s"),
    "no_files": _("Choose at least one photo or folder first."),
    "loading": _("Loading the hashing library…"),
    "library": _("The hashing library could not be loaded: %s"),
    "summary": _(
        "%(registered)s registered, %(already)s already registered, %(resigned)s signed anew, "
        "%(failed)s failed."
    ),
    "clean_done": _("The cleaned copy has no metadata left."),
    "nothing_found": _("No personal metadata found."),
    "check_failed": _("This file could not be checked: %s"),
}
# The categories of `childguard.protect.prepublish` findings.
FINDING_LABELS = {
    "location": _("Location (GPS)"),
    "serial": _("Serial number or unique id"),
    "owner": _("Owner or artist name"),
    "date": _("Date"),
    "camera": _("Camera make and model"),
    "text": _("Comment or description"),
    "metadata": _("XMP or IPTC metadata"),
}


def _person_csrf(request: Request, caller: Caller) -> str:
    cookie = presented_session(request)
    return csrf_token_for(cookie) if caller.user is not None and cookie is not None else ""


def _organisation(request: Request, caller: Caller) -> Organisation | None:
    """The caller's organisation, for the pages' header (None for a caller of none)."""
    if caller.organisation_id is None:
        return None
    with request.app.state.service.store.session() as s:
        try:
            return get_organisation_by_id(s, caller.organisation_id)
        except OrganisationNotFound:
            return None


def _render(request: Request, caller: Caller, name: str, context: dict[str, Any]) -> Response:
    language, chosen = choose_language(request, LANGUAGE_COOKIE)
    gettext: Callable[[str], str] = CATALOGS[language].gettext
    response = page(
        request,
        name,
        {
            **context,
            "_": gettext,
            "lang": language,
            "languages": LANGUAGES,
            "user": caller.user,
            "org": _organisation(request, caller),
            "path": request.url.path,
            "csrf_token": _person_csrf(request, caller),
            "messages": {k: gettext(v) for k, v in SCRIPT_MESSAGES.items()},
            "findings": {k: gettext(v) for k, v in FINDING_LABELS.items()},
        },
    )
    response.headers.update(REGISTER_HEADERS)
    if chosen:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=_LANGUAGE_COOKIE_SECONDS,
            samesite="lax",
            secure=request.app.state.service.settings.secure_cookies,
        )
    return response


@router.get("/photos/add", response_class=HTMLResponse)
def photos_add(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The form that registers photos by signatures computed in the browser."""
    return _render(request, caller, "org_photos_add.html", {})


@router.get("/photos/check", response_class=HTMLResponse)
def photos_check(request: Request, caller: Caller = owner("org-admin")) -> Response:
    """The check before publishing, in the browser; nothing is uploaded."""
    return _render(request, caller, "org_photos_check.html", {})


def static_file(path: str) -> Path | None:
    """The file `path` names under `static/org/` or `static/vendor/`, or None."""
    parts = path.split("/")
    if len(parts) < 2 or parts[0] not in STATIC_AREAS or any(p in ("", ".", "..") for p in parts):
        return None
    found = (STATIC_DIR / path).resolve()
    area = (STATIC_DIR / parts[0]).resolve()
    if not found.is_relative_to(area) or not found.is_file():
        return None
    return found


def _media_type(path: Path) -> str | None:
    for suffix, kind in STATIC_TYPES.items():
        if path.name.endswith(suffix):
            return kind
    return None


@router.get("/static/{path:path}")
def static(path: str, _: Caller = owner("org-admin")) -> Response:
    """The organisation pages' scripts and vendored libraries (never from a CDN)."""
    found = static_file(path)
    kind = _media_type(found) if found is not None else None
    if found is None or kind is None:
        return JSONResponse(
            {"message": f"no static file {path!r}"},
            status_code=404,
            headers={"X-Content-Type-Options": "nosniff"},
        )
    vendored = path.startswith("vendor/")
    headers = {
        **(WORKER_HEADERS if path in WORKERS else SCRIPT_HEADERS),
        "Cache-Control": "private, max-age=3600" if vendored else "no-cache",
    }
    return Response(found.read_bytes(), media_type=kind, headers=headers)
