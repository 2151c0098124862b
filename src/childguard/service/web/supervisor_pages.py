# Owns what the supervisors' configuration pages share: rendering under the review pages'
# headers, their message page, and the check that the caller is a signed-in person.
"""Helpers of the supervisors' pages (`/hotline/routing`, `/tasks`): each page module keeps
its routes and passes its own home address and sign-in refusal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from childguard.accounts import csrf_token_for
from childguard.service.auth import Caller, presented_session
from childguard.service.state import ServiceState
from childguard.service.web.pages import page
from childguard.service.web.review_pages import REVIEW_HEADERS


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def render(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> Response:
    response = page(request, name, dict(context), status)
    response.headers.update(REVIEW_HEADERS)
    return response


def message(request: Request, title: str, text: str, status: int, *, back: str) -> Response:
    return render(
        request,
        "_case_message.html",
        {"title": title, "message": text, "back": back, "user": None},
        status,
    )


def signed_in_token(request: Request, caller: Caller, *, refusal: str, back: str) -> str | Response:
    """The session's CSRF token, or the page refusing a key (`refusal` says where to sign in)."""
    cookie = presented_session(request)
    if caller.user is None or cookie is None:
        return message(request, "Sign in", refusal, 400, back=back)
    return csrf_token_for(cookie)
