# Owns the session routes of /v1: sign-in, sign-out and who-am-I, and the session cookie.
"""`POST /v1/session` signs a user in (username and password, as JSON or a form) and sets the
session cookie: HttpOnly, SameSite=Strict, and Secure when the `secure_cookies` setting is on.
It answers the user and the session's CSRF token, which a browser sends back in the
`X-CSRF-Token` header (or a `csrf_token` form field) on every unsafe call. `DELETE /v1/session`
signs out; `GET /v1/me` says who the caller is, key or user, with its roles and organisation.

Sign-in is public by necessity; repeated failures lock the account
(`login_max_failures`, `login_lockout_seconds`). A sign-in that a browser sends from another
site (`Sec-Fetch-Site`, or an `Origin` that is not this host) is refused with 403.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from childguard.accounts import (
    Lifetime,
    LoginFailed,
    SessionInfo,
    UserInfo,
    csrf_token_for,
    end_session,
    sign_in,
)
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Caller,
    presented_session,
    public,
    signed_in,
)
from childguard.service.config import Settings

router = APIRouter(prefix="/v1", tags=["session"], route_class=ProblemRoute, responses=RESPONSES)

_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class Credentials(BaseModel):
    """A username and a password."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(max_length=200)
    password: str = Field(max_length=1024)


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": Credentials.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": Credentials.model_json_schema()},
        },
    }
}


# ---------------------------------------------------------------------- shared with the pages


def lifetime(settings: Settings) -> Lifetime:
    """The session lifetime the settings give."""
    return Lifetime(
        idle=timedelta(seconds=settings.session_idle_seconds),
        absolute=timedelta(seconds=settings.session_max_seconds),
    )


def set_session_cookie(response: Response, token: str, settings: Settings) -> None:
    """Put the session token in the response's cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_max_seconds),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    """Tell the browser to drop the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.secure_cookies
    )


def cross_site(request: Request) -> bool:
    """Whether a browser sent the request from another site: `Sec-Fetch-Site` says so, or
    (for browsers that do not send it) the `Origin` is not this host."""
    fetch_site = request.headers.get("sec-fetch-site", "").lower()
    if fetch_site in ("cross-site", "same-site"):
        return True
    if fetch_site:
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower()


def attempt_sign_in(
    request: Request, username: str, password: str
) -> tuple[UserInfo, SessionInfo, str, str]:
    """`sign_in` with the service's settings; LoginFailed when refused."""
    state = request.app.state.service
    settings: Settings = state.settings
    return sign_in(
        state.store,
        username,
        password,
        lifetime=lifetime(settings),
        max_failures=settings.login_max_failures,
        lockout=timedelta(seconds=settings.login_lockout_seconds),
    )


def user_view(user: UserInfo) -> dict[str, Any]:
    """A user as the API shows it."""
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "roles": list(user.roles),
        "organisation_id": user.organisation_id,
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


# ---------------------------------------------------------------------- routes


async def _credentials(request: Request) -> Credentials:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith(_FORM_TYPES):
            form = await request.form()
            given = {k: v for k, v in form.items() if k != CSRF_FIELD}
            return Credentials.model_validate(given)
        raw = await request.body()
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            raise Problem(400, "the request body is not valid JSON", slug="malformed") from None
        return Credentials.model_validate(document)
    except ValidationError as exc:
        fields = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(f['loc']) or 'body'}: {f['msg']}" for f in fields)
        raise Problem(
            422,
            detail or "send a username and a password",
            slug="invalid-request",
            errors=fields,
        ) from None


@router.post(
    "/session",
    openapi_extra=_BODY_DOC,
    summary="Sign in",
    responses={200: {"description": "signed in; the session cookie is set"}},
)
async def start_session_route(request: Request, _: Caller = public()) -> JSONResponse:
    """Sign in with a username and password (JSON or a form). Sets the session cookie and
    answers the user, the session's expiry and its CSRF token."""
    if cross_site(request):
        raise Problem(403, "a sign-in from another site is refused", slug="cross-site")
    credentials = await _credentials(request)
    try:
        user, session, token, csrf = await run_in_threadpool(
            attempt_sign_in, request, credentials.username, credentials.password
        )
    except LoginFailed as exc:
        raise Problem(401, str(exc), slug="login-failed") from None
    response = JSONResponse(
        {
            "user": user_view(user),
            "csrf_token": csrf,
            "expires_at": session.expires_at.isoformat(),
        }
    )
    set_session_cookie(response, token, request.app.state.service.settings)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.delete("/session", summary="Sign out")
async def end_session_route(request: Request, caller: Caller = signed_in()) -> JSONResponse:
    """End the caller's session and drop its cookie. With an API key there is no session:
    `ended` is false."""
    state = request.app.state.service
    ended = False
    if caller.session is not None:
        ended = await run_in_threadpool(
            end_session, state.store, caller.session.id, actor=caller.actor
        )
    response = JSONResponse({"ended": ended})
    if caller.session is not None:
        clear_session_cookie(response, state.settings)
    return response


@router.get("/me", summary="Who am I")
def me(request: Request, caller: Caller = signed_in()) -> dict[str, Any]:
    """The caller: `kind` (`user` or `key`), `actor` (its name in the audit log), `roles`,
    `organisation_id`, and the user (with the session's expiry and CSRF token) or the key."""
    key = caller.key
    cookie = presented_session(request)
    return {
        "kind": "key" if key is not None else "user",
        "actor": caller.actor,
        "roles": list(caller.roles),
        "organisation_id": caller.organisation_id,
        "user": user_view(caller.user) if caller.user is not None else None,
        "key": (
            {
                "id": key.id,
                "name": key.name,
                "prefix": key.prefix,
                "role": key.role,
                "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            }
            if key is not None
            else None
        ),
        "session": (
            {
                "expires_at": caller.session.expires_at.isoformat(),
                "csrf_token": csrf_token_for(cookie) if cookie else None,
            }
            if caller.session is not None
            else None
        ),
    }
