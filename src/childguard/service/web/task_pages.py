# Owns the supervisors' page of scheduled tasks: runs, errors, next runs and "run now".
"""The scheduled tasks in the browser, thin over `childguard.jobs.schedule`.

`GET /tasks` (a signed-in `supervisor`) shows every scheduled task: its interval, when it runs
next, the node that holds its lease (while one does), how many runs in a row failed, and its
last runs with node, start, end, status, error and summary. `POST /tasks/{name}/run` makes a
task due at once (audited, as over the API: `/v1/tasks/{name}/run`) and comes back to the
page. Forms carry the session's CSRF token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from childguard.accounts import csrf_token_for
from childguard.jobs import schedule
from childguard.service.auth import Caller, owner, presented_session
from childguard.service.state import ServiceState
from childguard.service.web.pages import page
from childguard.service.web.review_pages import REVIEW_HEADERS
from childguard.store.base import utcnow

router = APIRouter(prefix="/tasks", tags=["pages"], include_in_schema=False)

PERSON_ONLY = "the tasks page is for a signed-in supervisor: sign in at /login"
HOME = "/tasks"
RUNS_SHOWN = 5


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _render(request: Request, name: str, context: Mapping[str, Any], status: int = 200) -> Response:
    response = page(request, name, dict(context), status)
    response.headers.update(REVIEW_HEADERS)
    return response


def _message(request: Request, title: str, message: str, status: int) -> Response:
    return _render(
        request,
        "_case_message.html",
        {"title": title, "message": message, "back": HOME, "user": None},
        status,
    )


def _signed_in(request: Request, caller: Caller) -> str | Response:
    """The session's CSRF token, or the refusal for a key."""
    cookie = presented_session(request)
    if caller.user is None or cookie is None:
        return _message(request, "Sign in", PERSON_ONLY, 400)
    return csrf_token_for(cookie)


def _summary(data: Mapping[str, Any] | None) -> str:
    if not data:
        return ""
    return json.dumps(data, separators=(", ", ": "), default=str)[:600]


@router.get("", response_class=HTMLResponse)
async def tasks_page(request: Request, caller: Caller = owner("supervisor")) -> Response:
    """Every scheduled task, its last runs and a "run now" button."""
    token = _signed_in(request, caller)
    if isinstance(token, Response):
        return token
    store = _state(request).store
    states = await run_in_threadpool(lambda: schedule.task_states(store, runs=RUNS_SHOWN))
    return _render(
        request,
        "tasks.html",
        {
            "user": caller.user,
            "csrf_token": token,
            "tasks": states,
            "now": utcnow(),
            "summary": _summary,
        },
    )


@router.post("/{name}/run")
async def run_now(request: Request, name: str, caller: Caller = owner("supervisor")) -> Response:
    """Make the task due now; back to the page."""
    token = _signed_in(request, caller)
    if isinstance(token, Response):
        return token
    store = _state(request).store
    try:
        await run_in_threadpool(schedule.request_run, store, name, caller.actor)
    except schedule.TaskNotFound as exc:
        return _message(request, "Task not run", str(exc), 404)
    return RedirectResponse(f"{HOME}#task-{name}", status_code=303)
