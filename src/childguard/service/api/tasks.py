# Owns the scheduled tasks over the API: runs, errors, next runs and "run now".
"""`GET /v1/tasks` lists every scheduled task the store knows (`childguard.jobs.schedule`):
its interval, next run, the node holding its lease (while one does), how many runs in a row
failed and its last runs (status, node, start and end, error, summary). `GET
/v1/tasks/{name}` shows one task with more runs. `POST /v1/tasks/{name}/run` makes a task due
at once (audited; 202): the first worker to look at the schedule runs it, unless another
holds its lease. Every route needs the `supervisor` role.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from childguard.jobs import schedule
from childguard.service.api.problems import RESPONSES, Problem, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState
from childguard.store.base import utcnow

router = APIRouter(
    prefix="/v1/tasks", tags=["v1: tasks"], route_class=ProblemRoute, responses=RESPONSES
)


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def tasks_json(states: list[schedule.TaskState]) -> dict[str, Any]:
    now = utcnow()
    return {"now": now.isoformat(), "tasks": [s.to_dict(now) for s in states]}


@router.get("")
async def tasks_list(
    request: Request,
    runs: int = Query(5, ge=0, le=100, description="the last runs to show per task"),
    caller: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """Every scheduled task: schedule, lease, consecutive failures and its last runs."""
    store = _state(request).store
    states = await run_in_threadpool(lambda: schedule.task_states(store, runs=runs))
    return tasks_json(states)


@router.get("/{name}")
async def task_show(
    request: Request,
    name: str,
    runs: int = Query(50, ge=0, le=200, description="the last runs to show"),
    caller: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """One scheduled task with its last runs; 404 for an unknown task."""
    store = _state(request).store
    states = await run_in_threadpool(lambda: schedule.task_states(store, runs=0))
    found = [s for s in states if s.task == name]
    if not found:
        raise Problem(404, f"no scheduled task {name!r}", slug="task-not-found")
    recent = await run_in_threadpool(lambda: schedule.recent_runs(store, name, limit=runs))
    now = utcnow()
    return {**found[0].to_dict(now), "runs": [r.to_dict() for r in recent]}


@router.post("/{name}/run", status_code=202)
async def task_run_now(
    request: Request, name: str, caller: Caller = owner("supervisor")
) -> JSONResponse:
    """Make the task due now (audited): 202 with its next run time."""
    store = _state(request).store
    try:
        at = await run_in_threadpool(schedule.request_run, store, name, caller.actor)
    except schedule.TaskNotFound as exc:
        raise Problem(404, str(exc), slug="task-not-found") from None
    return JSONResponse({"task": name, "next_run_at": at.isoformat()}, status_code=202)
