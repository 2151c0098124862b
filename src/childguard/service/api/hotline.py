# Owns the /v1/hotline routes: the review queue, votes, reveals, decisions and false positives.
"""The hotline's review over JSON, thin over `childguard.hotline.review` and
`childguard.hotline.assessments`.

The queue's routes are for signed-in analysts: a lock, a vote, a reveal and the day's
exposure belong to a person, so a key (even one of the `analyst` role) is refused with 403.
`GET /v1/hotline/schemes` and `GET /v1/hotline/disagreements` take keys too. Nothing here
answers media: the blurred preview comes with the web pages.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from childguard.hotline import assessments, review
from childguard.hotline.reports import failed_urls
from childguard.hotline.schemes import InvalidFacts, describe
from childguard.service.api.paging import (
    cursor_query,
    decode_id_cursor,
    encode_cursor,
    limit_query,
)
from childguard.service.api.problems import (
    MEDIA_TYPE,
    PROBLEM_SCHEMA,
    RESPONSES,
    Problem,
    ProblemRoute,
)
from childguard.service.auth import Caller, owner
from childguard.service.hotline_tasks import exposure_settings, vote_settings
from childguard.service.state import ServiceState

_RESPONSES: dict[int | str, dict[str, Any]] = {
    **RESPONSES,
    429: {
        "description": "the analyst's daily viewing cap is reached",
        "content": {MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}},
    },
}
router = APIRouter(
    prefix="/v1/hotline", tags=["hotline"], route_class=ProblemRoute, responses=_RESPONSES
)

PERSON_ONLY = "the review queue is for signed-in analysts"


class NextRequest(BaseModel):
    lock_seconds: int = Field(
        review.DEFAULT_LOCK_SECONDS, ge=1, le=3600, description="how long the lock lasts"
    )


class VoteRequest(BaseModel):
    facts: dict[str, Any] = Field(description="age_band, severity and the context flags")
    note: str | None = Field(None, max_length=2000)


class ReasonRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class RevealRequest(BaseModel):
    reason: str | None = Field(None, max_length=500)
    seconds: int = Field(0, ge=0, le=3600, description="seconds of content on screen to add")


class FalsePositiveRequest(BaseModel):
    match: str = Field(description="the match's key, `entry:<id>`")
    reason: str = Field(min_length=1, max_length=500)


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _person(caller: Caller) -> int:
    if caller.user is None:
        raise Problem(403, PERSON_ONLY, slug="person-only")
    return caller.user.id


def _problem(exc: Exception) -> Problem:
    if isinstance(exc, review.ItemNotFound):
        return Problem(404, str(exc), slug="item-not-found")
    if isinstance(exc, review.LockNotHeld | assessments.LockedByOther):
        return Problem(409, str(exc), slug="item-locked")
    if isinstance(exc, assessments.AlreadyVoted):
        return Problem(409, str(exc), slug="already-voted")
    if isinstance(exc, assessments.ItemNotOpen | assessments.NotAwaitingSupervisor):
        return Problem(409, str(exc), slug="item-not-open")
    if isinstance(exc, review.ExposureCapReached):
        return Problem(429, str(exc), slug="exposure-cap")
    if isinstance(exc, assessments.MatchNotFound):
        return Problem(404, str(exc), slug="match-not-found")
    if isinstance(exc, InvalidFacts):
        return Problem(422, str(exc), slug="invalid-facts")
    raise exc


_ERRORS = (
    review.ItemNotFound,
    review.LockNotHeld,
    review.ExposureCapReached,
    assessments.LockedByOther,
    assessments.AlreadyVoted,
    assessments.ItemNotOpen,
    assessments.NotAwaitingSupervisor,
    assessments.MatchNotFound,
    InvalidFacts,
)


@router.post("/queue/next")
async def queue_next(
    request: Request, body: NextRequest, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """Lock the next item to the signed-in analyst: `{"item": {...} | null, "exposure"}`;
    the item's id, signals, matches with provenance, places and earlier assessments."""
    user_id = _person(caller)
    state = _state(request)

    def work() -> dict[str, Any]:
        exposure = review.exposure_today(state.store, user_id, exposure_settings(state.settings))
        if exposure.over_cap:
            raise Problem(
                429,
                "today's viewing cap is reached: take a break; the queue opens again tomorrow",
                slug="exposure-cap",
                exposure=exposure.to_dict(),
            )
        item_id = review.next_item(state.store, user_id, body.lock_seconds)
        item = review.item_view(state.store, item_id) if item_id is not None else None
        return {"item": item, "exposure": exposure.to_dict()}

    return await run_in_threadpool(work)


@router.post("/items/{item_id}/votes")
async def vote(
    request: Request, item_id: int, body: VoteRequest, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """Record the analyst's facts: the derived outcome and labels, and `status` (`recorded`,
    `final` or `supervisor`)."""
    user_id = _person(caller)
    state = _state(request)
    try:
        result = await run_in_threadpool(
            assessments.record_vote,
            state.store,
            item_id,
            user_id,
            body.facts,
            body.note,
            vote_settings(state.settings),
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    if result.banked:
        await run_in_threadpool(state.changed)
    return result.to_dict()


@router.post("/items/{item_id}/release")
async def release(
    request: Request, item_id: int, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """Give the item back to the queue: `{"released": bool}`."""
    user_id = _person(caller)
    released = await run_in_threadpool(review.release, _state(request).store, user_id, item_id)
    return {"item_id": item_id, "released": released}


@router.post("/items/{item_id}/skip")
async def skip(
    request: Request, item_id: int, body: ReasonRequest, caller: Caller = owner("analyst")
) -> dict[str, Any]:
    """Give the item back with a reason; it is not offered to this analyst again soon."""
    user_id = _person(caller)
    skipped = await run_in_threadpool(
        review.skip, _state(request).store, user_id, item_id, body.reason
    )
    if not skipped:
        raise Problem(409, f"item {item_id} is not locked to you", slug="item-locked")
    return {"item_id": item_id, "skipped": True}


@router.post("/items/{item_id}/reveal")
async def reveal(
    request: Request,
    item_id: int,
    body: RevealRequest | None = None,
    caller: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Record a deliberate reveal (audited, counted) of the item the analyst holds, and the
    seconds of content on screen: the day's exposure. No content is answered."""
    user_id = _person(caller)
    state = _state(request)
    store = state.store
    cap = exposure_settings(state.settings)
    given = body or RevealRequest(reason=None, seconds=0)

    def work() -> dict[str, Any]:
        if given.seconds:
            review.record_exposure(store, user_id, given.seconds, cap)
        return review.reveal(store, user_id, item_id, given.reason, cap).to_dict()

    try:
        exposure = await run_in_threadpool(work)
    except _ERRORS as exc:
        raise _problem(exc) from None
    return {"item_id": item_id, "revealed": True, "exposure": exposure}


@router.get("/disagreements")
def disagreements(
    request: Request,
    limit: int = Query(100, ge=1, le=500),
    _: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """Items whose votes disagree, oldest first, each with its votes."""
    return {"items": assessments.disagreements(_state(request).store, limit=limit)}


@router.post("/items/{item_id}/decision")
async def decision(
    request: Request, item_id: int, body: VoteRequest, caller: Caller = owner("supervisor")
) -> dict[str, Any]:
    """The supervisor's decision on a disagreement: the `supervisor` assessment."""
    if caller.user is None:
        raise Problem(403, "a decision is a signed-in supervisor's", slug="person-only")
    state = _state(request)
    try:
        result = await run_in_threadpool(
            assessments.supervisor_decide,
            state.store,
            item_id,
            caller.user.id,
            body.facts,
            body.note,
            vote_settings(state.settings),
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    if result.banked:
        await run_in_threadpool(state.changed)
    return result.to_dict()


@router.post("/items/{item_id}/false-positive")
async def false_positive(
    request: Request,
    item_id: int,
    body: FalsePositiveRequest,
    caller: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Mark one of the item's bank matches wrong: its hash goes into the allow bank."""
    user_id = _person(caller)
    state = _state(request)
    try:
        answer = await run_in_threadpool(
            assessments.mark_match_wrong, state.store, item_id, body.match, user_id, body.reason
        )
    except _ERRORS as exc:
        raise _problem(exc) from None
    await run_in_threadpool(state.changed)
    return answer


@router.get("/fetch-failures")
def fetch_failures(
    request: Request,
    limit: int = limit_query(),
    cursor: str | None = cursor_query(),
    _: Caller = owner("analyst"),
) -> dict[str, Any]:
    """Reported URLs that could not be fetched: `{"items": [{"id", "report_id", "url",
    "attempts", "last_error", "next_attempt_at"}], "next_cursor"}`. They are retried on a
    schedule until the attempts run out; the reason says which."""
    after = decode_id_cursor(cursor) if cursor else None
    rows = failed_urls(_state(request).store, limit=limit + 1, after_id=after)
    page = rows[:limit]
    return {
        "items": [
            {
                "id": r.id,
                "report_id": r.report_id,
                "url": r.url,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "next_attempt_at": r.next_attempt_at.isoformat(),
            }
            for r in page
        ],
        "next_cursor": encode_cursor(page[-1].id) if len(rows) > limit else None,
    }


@router.get("/schemes")
def schemes(_: Caller = owner("analyst")) -> dict[str, Any]:
    """The facts an analyst records and every scheme's mapping table."""
    return describe()
