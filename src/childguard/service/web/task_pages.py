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

from childguard.jobs import schedule
from childguard.service.auth import Caller, owner
from childguard.service.web import supervisor_pages
from childguard.store.base import utcnow

router = APIRouter(prefix="/tasks", tags=["pages"], include_in_schema=False)

PERSON_ONLY = "the tasks page is for a signed-in supervisor: sign in at /login"
HOME = "/tasks"
RUNS_SHOWN = 5


def _message(request: Request, title: str, text: str, status: int) -> Response:
    return supervisor_pages.message(request, title, text, status, back=HOME)


def _signed_in(request: Request, caller: Caller) -> str | Response:
    """The session's CSRF token, or the refusal for a key."""
    return supervisor_pages.signed_in_token(request, caller, refusal=PERSON_ONLY, back=HOME)


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
    store = supervisor_pages.service_state(request).store
    states = await run_in_threadpool(lambda: schedule.task_states(store, runs=RUNS_SHOWN))
    return supervisor_pages.render(
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
    store = supervisor_pages.service_state(request).store
    try:
        await run_in_threadpool(schedule.request_run, store, name, caller.actor)
    except schedule.TaskNotFound as exc:
        return _message(request, "Task not run", str(exc), 404)
    return RedirectResponse(f"{HOME}#task-{name}", status_code=303)
