# Owns the sign-in pages: GET and POST /login, POST /logout, and the pages' common headers.
"""The sign-in page, server-rendered, for a person with a browser.

`GET /login` shows the form (or, to a signed-in browser, who it is signed in as and a sign-out
button). The form carries a one-time token that must match a cookie set with it, and a
sign-in sent from another site is refused, so no other site can sign a browser in. `POST
/login` signs in and sets the same session cookie as `POST /v1/session`, then sends the
browser on to `next` (a path on this site) or back to `/login`. `POST /logout` needs the
session's CSRF token in the form (the pages put it there) and ends the session.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from childguard.accounts import LoginFailed, UserInfo, csrf_token_for, end_session, identify_session
from childguard.service.api.session import (
    attempt_sign_in,
    clear_session_cookie,
    cross_site,
    lifetime,
    set_session_cookie,
)
from childguard.service.auth import CSRF_FIELD, Caller, presented_session, public, signed_in

router = APIRouter(tags=["pages"], include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

LOGIN_COOKIE = "childguard_login"
_LOGIN_COOKIE_SECONDS = 3600
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """Render template `name` with the pages' headers."""
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers.update(PAGE_HEADERS)
    return response


def safe_next(target: str | None) -> str:
    """`target` if it is a path on this site, else `/login`."""
    if (
        target
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and target.isprintable()
        and not any(c.isspace() for c in target)
    ):
        return target
    return "/login"


def _signed_in_user(request: Request) -> tuple[UserInfo, str] | None:
    cookie = presented_session(request)
    if cookie is None:
        return None
    state = request.app.state.service
    found = identify_session(state.store, cookie, idle=lifetime(state.settings).idle)
    return (found[0], csrf_token_for(cookie)) if found is not None else None


def _login_form(
    request: Request, *, next_path: str, username: str = "", error: str = "", status: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        {
            "user": None,
            "login_token": token,
            "next": next_path,
            "username": username,
            "error": error,
        },
        status,
    )
    settings = request.app.state.service.settings
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=_LOGIN_COOKIE_SECONDS,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, _: Caller = public()) -> HTMLResponse:
    """The sign-in form, or who this browser is signed in as."""
    next_path = safe_next(request.query_params.get("next"))
    found = await run_in_threadpool(_signed_in_user, request)
    if found is not None:
        user, csrf = found
        return page(request, "login.html", {"user": user, "csrf_token": csrf})
    return _login_form(request, next_path=next_path)


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request, _: Caller = public()) -> Response:
    """Sign in from the form."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    next_path = safe_next(values.get("next"))
    expected = request.cookies.get(LOGIN_COOKIE, "")
    presented = values.get(CSRF_FIELD, "")
    if cross_site(request) or not expected or not hmac.compare_digest(expected, presented):
        return _login_form(
            request,
            next_path=next_path,
            error="The sign-in form had expired or came from another site; please try again.",
            status=403,
        )
    username = values.get("username", "")
    try:
        signed = await run_in_threadpool(
            attempt_sign_in, request, username, values.get("password", "")
        )
    except LoginFailed as exc:
        return _login_form(
            request, next_path=next_path, username=username, error=f"{exc}.", status=401
        )
    response = RedirectResponse(next_path, status_code=303)
    settings = request.app.state.service.settings
    set_session_cookie(response, signed[2], settings)
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(request: Request, caller: Caller = signed_in()) -> Response:
    """End this browser's session (the form must carry its CSRF token) and go to /login."""
    state = request.app.state.service
    if caller.session is None:
        raise HTTPException(400, "signed in with an API key: there is no session to end")
    await run_in_threadpool(end_session, state.store, caller.session.id, actor=caller.actor)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, state.settings)
    return response
