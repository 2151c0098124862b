# Owns the host's notice pages: GET /host/notice/{token} and its removal and comment forms.
"""The pages a host (or CDN, registrar, platform) reaches through the link in a notice,
without an account, thin over `childguard.hotline.host_links`.

The routes are `public()`: **the link's token is the credential**. An unknown, altered or
expired token is answered 404 with one page for all three. The page shows the notice's
reference, reason and URLs with what the hotline's last check found; never an image, a
preview, an analyst's name, or the notifier's identity when it is withheld.

- `GET /host/notice/{token}`: the notice (the view is recorded and audited);
- `POST /host/notice/{token}/removed`: the host says the content is removed, once (a second
  claim is answered 409 saying so); it only brings the removal check forward;
- `POST /host/notice/{token}/comment`: a comment for the analysts.

The forms carry a token derived from the link's token by HMAC under a key from the service's
secret, and a form sent from another site (`Sec-Fetch-Site`, `Origin`) is refused (403), so
no other site can post them for a host. The pages answer `Referrer-Policy: no-referrer` (the
link never leaks to a site the host follows a link to) and `Cache-Control: no-store`. The
access log names the route template, never the token.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from childguard.hotline import host_links
from childguard.hotline.crypto import derive_key
from childguard.service.api.session import cross_site
from childguard.service.auth import CSRF_FIELD, Caller, public
from childguard.service.web.pages import page
from childguard.store.base import utcnow

router = APIRouter(tags=["pages"], include_in_schema=False)

FORM_KEY_PURPOSE = "host-link-form"
FORM_MAX_BYTES = 16 * 1024
HOST_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
NOT_VALID = "This notice link is not valid or has expired."


def form_token(secret_key: bytes, link_token: str) -> str:
    """The forms' token of one host link: HMAC-SHA256 of the link under the form key."""
    key = derive_key(secret_key, FORM_KEY_PURPOSE)
    return hmac.new(key, link_token.encode("utf-8", "replace"), hashlib.sha256).hexdigest()


def _render(
    request: Request,
    token: str,
    view: host_links.PublicNotice | None,
    *,
    status: int = 200,
    message: str = "",
    error: str = "",
) -> HTMLResponse:
    context: dict[str, Any] = {
        "notice": view,
        "token": token,
        "csrf_field": CSRF_FIELD,
        "form_token": form_token(request.app.state.service.secret_key(), token) if view else "",
        "message": message,
        "error": error,
    }
    response = page(request, "host_notice.html", context, status)
    response.headers.update(HOST_HEADERS)
    return response


def _invalid(request: Request) -> HTMLResponse:
    return _render(request, "", None, status=404, error=NOT_VALID)


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        raise HTTPException(413, f"a form over {FORM_MAX_BYTES} bytes")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _form_ok(request: Request, token: str, values: dict[str, str]) -> bool:
    expected = form_token(request.app.state.service.secret_key(), token)
    presented = values.get(CSRF_FIELD, "")
    return not cross_site(request) and hmac.compare_digest(expected, presented)


@router.get("/host/notice/{token}", response_class=HTMLResponse)
async def host_notice(request: Request, token: str, _: Caller = public()) -> HTMLResponse:
    """The notice as its host sees it."""
    store = request.app.state.service.store
    try:
        view = await run_in_threadpool(host_links.open_link, store, token, now=utcnow())
    except host_links.LinkInvalid:
        return _invalid(request)
    return _render(request, token, view)


async def _answer(request: Request, token: str, kind: str) -> HTMLResponse:
    store = request.app.state.service.store
    values = await _form(request)
    now = utcnow()
    if not _form_ok(request, token, values):
        try:
            view = await run_in_threadpool(host_links.open_link, store, token, now=now)
        except host_links.LinkInvalid:
            return _invalid(request)
        return _render(
            request,
            token,
            view,
            status=403,
            error="The form had expired or came from another site; please try again.",
        )
    text = values.get("comment", "")
    try:
        if kind == "removed":
            view = await run_in_threadpool(
                host_links.claim_removed, store, token, now=now, comment=text
            )
            message = (
                "Thank you. We will check the content shortly; the notice closes once our "
                "check confirms it is gone."
            )
        else:
            view = await run_in_threadpool(host_links.comment, store, token, text, now=now)
            message = "Thank you. Your comment was passed on to the hotline."
    except host_links.LinkInvalid:
        return _invalid(request)
    except host_links.AlreadyClaimed as exc:
        view = await run_in_threadpool(host_links.open_link, store, token, now=now)
        return _render(request, token, view, status=409, error=f"{exc}.")
    except host_links.InvalidComment as exc:
        view = await run_in_threadpool(host_links.open_link, store, token, now=now)
        return _render(request, token, view, status=422, error=f"{exc}.")
    return _render(request, token, view, message=message)


@router.post("/host/notice/{token}/removed", response_class=HTMLResponse)
async def host_removed(request: Request, token: str, _: Caller = public()) -> HTMLResponse:
    """The host says the content is removed (once); a removal check will confirm it."""
    return await _answer(request, token, "removed")


@router.post("/host/notice/{token}/comment", response_class=HTMLResponse)
async def host_comment(request: Request, token: str, _: Caller = public()) -> HTMLResponse:
    """The host's comment for the hotline."""
    return await _answer(request, token, "comment")
