# Owns the statistics routes: times to referral, notice and removal; INHOPE-style counts.
"""The hotline's statistics over JSON and CSV, for supervisors, thin over
`childguard.hotline.statistics`.

- `GET /v1/hotline/statistics/removal?group_by=&since=&until=`: `{"group_by", "groups"}`,
  per host, country or route (or all) the times to referral, notice and removal (count,
  median and p90 hours) and the share removed within 1, 3 and 7 days;
- `GET /v1/hotline/statistics/weekly?weeks=&until=`: `{"weeks"}`, per ISO week the routes removed
  and their median and p90 hours;
- `GET /v1/hotline/statistics/countries?since=&until=`: `{"countries"}`, per hosting
  country the routes, those removed and the share;
- `GET /v1/hotline/statistics/inhope?since=&until=`: the INHOPE-style statistics.

Each has a `.csv` twin (`/removal.csv`, ...) with the same query, answering `text/csv`. A
time without a zone is taken as UTC. Owner: `supervisor` (keys and signed-in users).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from childguard.hotline import statistics
from childguard.service.api.problems import RESPONSES, ProblemRoute
from childguard.service.auth import Caller, owner
from childguard.service.state import ServiceState

router = APIRouter(
    prefix="/v1/hotline/statistics",
    tags=["hotline"],
    route_class=ProblemRoute,
    responses=RESPONSES,
)

GroupBy = Literal["host", "country", "route"]
SINCE = Query(None, description="from this time (ISO 8601; UTC when no zone is given)")
UNTIL = Query(None, description="until this time, excluded (ISO 8601)")
WEEKS = Query(12, ge=1, le=statistics.MAX_WEEKS, description="how many ISO weeks, to now's")
LAST_WEEK = Query(None, description="the last week is the one of this time (default: now)")
GROUP_BY = Query(None, description="one row per host, country or route; all routes when absent")


class CsvResponse(Response):
    media_type = "text/csv"


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _csv(name: str, header: tuple[str, ...], records: list[Any]) -> CsvResponse:
    text = statistics.to_csv(header, [row for r in records for row in r.csv_rows()])
    return CsvResponse(
        text,
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def _removal(
    request: Request, group_by: str | None, since: datetime | None, until: datetime | None
) -> list[statistics.TimeStats]:
    return await run_in_threadpool(
        lambda: statistics.removal_times(
            _state(request).store, group_by=group_by, since=_utc(since), until=_utc(until)
        )
    )


@router.get("/removal")
async def removal(
    request: Request,
    group_by: GroupBy | None = GROUP_BY,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    _: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """Times to referral, notice and removal (median, p90 in hours) and the share removed
    within 1, 3 and 7 days, of the confirmed routes reported in the period."""
    groups = await _removal(request, group_by, since, until)
    return {"group_by": group_by, "groups": [g.to_dict() for g in groups]}


@router.get("/removal.csv", response_class=CsvResponse)
async def removal_csv(
    request: Request,
    group_by: GroupBy | None = GROUP_BY,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    _: Caller = owner("supervisor"),
) -> CsvResponse:
    """`/removal` as CSV, one row per group."""
    groups = await _removal(request, group_by, since, until)
    return _csv("removal", statistics.TimeStats.CSV_HEADER, groups)


async def _weekly(
    request: Request, weeks: int, until: datetime | None
) -> list[statistics.WeekStats]:
    return await run_in_threadpool(
        lambda: statistics.weekly_removal(_state(request).store, weeks=weeks, now=_utc(until))
    )


@router.get("/weekly")
async def weekly(
    request: Request,
    weeks: int = WEEKS,
    until: datetime | None = LAST_WEEK,
    _: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """Per ISO week (oldest first, to this one or `until`'s), the routes removed in it and
    the median and p90 hours from their report."""
    return {"weeks": [w.to_dict() for w in await _weekly(request, weeks, until)]}


@router.get("/weekly.csv", response_class=CsvResponse)
async def weekly_csv(
    request: Request,
    weeks: int = WEEKS,
    until: datetime | None = LAST_WEEK,
    _: Caller = owner("supervisor"),
) -> CsvResponse:
    """`/weekly` as CSV."""
    found = await _weekly(request, weeks, until)
    return _csv("weekly", statistics.WeekStats.CSV_HEADER, found)


async def _countries(
    request: Request, since: datetime | None, until: datetime | None
) -> list[statistics.CountryRemoval]:
    return await run_in_threadpool(
        lambda: statistics.removal_by_country(
            _state(request).store, since=_utc(since), until=_utc(until)
        )
    )


@router.get("/countries")
async def countries(
    request: Request,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    _: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """Per hosting country, the confirmed routes reported in the period, how many were
    removed, and the share."""
    rows = await _countries(request, since, until)
    return {"countries": [r.to_dict() for r in rows]}


@router.get("/countries.csv", response_class=CsvResponse)
async def countries_csv(
    request: Request,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    _: Caller = owner("supervisor"),
) -> CsvResponse:
    """`/countries` as CSV."""
    rows = await _countries(request, since, until)
    return _csv("countries", statistics.CountryRemoval.CSV_HEADER, rows)


async def _inhope(
    request: Request, since: datetime | None, until: datetime | None
) -> statistics.InhopeStatistics:
    return await run_in_threadpool(
        lambda: statistics.inhope_statistics(
            _state(request).store, since=_utc(since), until=_utc(until)
        )
    )


@router.get("/inhope")
async def inhope(
    request: Request,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    _: Caller = owner("supervisor"),
) -> dict[str, Any]:
    """INHOPE-style statistics of the period: reports, URLs, items by outcome, site type
    and hosting country, labels per scheme, new against already known, the inherited share."""
    return (await _inhope(request, since, until)).to_dict()


@router.get("/inhope.csv", response_class=CsvResponse)
async def inhope_csv(
    request: Request,
    since: datetime | None = SINCE,
    until: datetime | None = UNTIL,
    _: Caller = owner("supervisor"),
) -> CsvResponse:
    """`/inhope` as CSV: one row per figure (section, key, total, illegal)."""
    found = await _inhope(request, since, until)
    return _csv("inhope", statistics.InhopeStatistics.CSV_HEADER, [found])
