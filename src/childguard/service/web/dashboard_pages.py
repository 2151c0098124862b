# Owns the supervisors' dashboard page: charts drawn server-side and their CSV.
"""The supervisors' dashboard, thin over `childguard.hotline.statistics` and
`childguard.hotline.charts`.

`GET /hotline/dashboard` (a signed-in user with the `supervisor` role) shows, for a period
(`since`, `until`: dates, the end excluded; all time by default) and a number of weeks:

- the time to removal (median and p90 hours from the report, the share removed within 1, 3
  and 7 days) with the times to referral and to notice;
- the charts, drawn on the server as SVG and put in the page (no script): the median time to
  removal per ISO week (the last `weeks` weeks, to `until`'s), and the share removed per
  hosting country; each with its data as a table beside it;
- the same figures per host, per hosting country and per route;
- the INHOPE-style statistics: reports, URLs, items by outcome, site type, hosting country,
  labels per scheme, new against already known, the inherited share.

`GET /hotline/dashboard/charts/{name}.svg` and `.csv` give each chart (`removal-weekly`,
`removal-by-country`) on its own and its data as CSV, with the page's query; these two also
take a `supervisor` key. An unsigned browser is sent to sign in (as the review pages are).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from childguard.accounts import csrf_token_for
from childguard.hotline import charts, statistics
from childguard.service.auth import Caller, owner, presented_session
from childguard.service.state import ServiceState
from childguard.service.web.pages import page
from childguard.service.web.review_pages import REVIEW_HEADERS

router = APIRouter(prefix="/hotline/dashboard", tags=["pages"], include_in_schema=False)

CHART_NAMES = ("removal-weekly", "removal-by-country")
DEFAULT_WEEKS = 12
PERSON_ONLY = "the dashboard is for a signed-in supervisor: sign in at /login"
TOP_HOSTS = 25
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


class PeriodError(ValueError):
    """A period or number of weeks the dashboard cannot take."""


def _state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


def _day(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"{name} must be a date, YYYY-MM-DD, not {value[:40]!r}") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def period_of(request: Request) -> tuple[datetime | None, datetime | None, int]:
    """The page's period (since, until: the start of each day, UTC) and number of weeks."""
    query = request.query_params
    since = _day(query.get("since"), "since")
    until = _day(query.get("until"), "until")
    raw = query.get("weeks") or str(DEFAULT_WEEKS)
    if not raw.isdigit() or not 1 <= int(raw) <= statistics.MAX_WEEKS:
        raise PeriodError(f"weeks must be a whole number 1-{statistics.MAX_WEEKS}")
    if since is not None and until is not None and until <= since:
        raise PeriodError("the period must end after it starts")
    return since, until, int(raw)


def _last_moment(until: datetime | None) -> datetime | None:
    return until - timedelta(microseconds=1) if until is not None else None


def build_charts(
    store: Any, since: datetime | None, until: datetime | None, weeks: int
) -> dict[str, charts.Chart]:
    """The dashboard's charts for the period, by name."""
    return {
        "removal-weekly": charts.weekly_removal_chart(
            statistics.weekly_removal(store, weeks=weeks, now=_last_moment(until))
        ),
        "removal-by-country": charts.removal_by_country_chart(
            statistics.removal_by_country(store, since=since, until=until)
        ),
    }


def _figures(
    store: Any, since: datetime | None, until: datetime | None, weeks: int
) -> dict[str, Any]:
    (overall,) = statistics.removal_times(store, since=since, until=until)
    return {
        "overall": overall,
        "by_host": statistics.removal_times(store, group_by="host", since=since, until=until)[
            :TOP_HOSTS
        ],
        "by_country": statistics.removal_times(store, group_by="country", since=since, until=until),
        "by_route": statistics.removal_times(store, group_by="route", since=since, until=until),
        "inhope": statistics.inhope_statistics(store, since=since, until=until),
        "charts": build_charts(store, since, until, weeks),
    }


def hours(value: float | None) -> str:
    """Hours for the page: `30.5 h`, with days past two days; a dash for none."""
    if value is None:
        return "–"
    if value >= 48:
        return f"{value:.1f} h ({value / 24:.1f} days)"
    return f"{value:.1f} h"


def percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _message(request: Request, title: str, message: str, status: int) -> HTMLResponse:
    response = page(
        request,
        "review_message.html",
        {"title": title, "message": message, "user": None},
        status,
    )
    response.headers.update(REVIEW_HEADERS)
    return response


def _page_query(since: datetime | None, until: datetime | None, weeks: int) -> str:
    """The period and weeks as the dashboard's own query (for its charts' links)."""
    values = {
        "since": since.date().isoformat() if since else None,
        "until": until.date().isoformat() if until else None,
        "weeks": str(weeks) if weeks != DEFAULT_WEEKS else None,
    }
    kept = {k: v for k, v in values.items() if v}
    return "?" + urlencode(kept) if kept else ""


def _api_query(since: datetime | None, until: datetime | None) -> str:
    """The period as the statistics API's query."""
    parts = [
        f"{n}={v.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        for n, v in (("since", since), ("until", until))
        if v
    ]
    return "?" + "&".join(parts) if parts else ""


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request, caller: Caller = owner("supervisor")) -> Response:
    """The dashboard of the period: times to removal, charts, tables, INHOPE statistics."""
    cookie = presented_session(request)
    if caller.user is None or cookie is None:
        return _message(request, "Sign in", PERSON_ONLY, 400)
    try:
        since, until, weeks = period_of(request)
    except PeriodError as exc:
        return _message(request, "Not shown", str(exc), 422)
    store = _state(request).store
    figures = await run_in_threadpool(_figures, store, since, until, weeks)
    response = page(
        request,
        "dashboard.html",
        {
            **figures,
            "user": caller.user,
            "csrf_token": csrf_token_for(cookie),
            "since": since.date().isoformat() if since else "",
            "until": until.date().isoformat() if until else "",
            "weeks": weeks,
            "query": _page_query(since, until, weeks),
            "api_query": _api_query(since, until),
            "hours": hours,
            "percent": percent,
            "within_days": statistics.WITHIN_DAYS,
        },
    )
    response.headers.update(REVIEW_HEADERS)
    return response


async def _chart(request: Request, name: str) -> charts.Chart | Response:
    if name not in CHART_NAMES:
        return Response(
            f"no chart {name[:60]!r}; the charts are {', '.join(CHART_NAMES)}",
            status_code=404,
            media_type="text/plain",
        )
    try:
        since, until, weeks = period_of(request)
    except PeriodError as exc:
        return Response(str(exc), status_code=422, media_type="text/plain")
    made = await run_in_threadpool(build_charts, _state(request).store, since, until, weeks)
    return made[name]


@router.get("/charts/{name}.svg")
async def chart_svg(request: Request, name: str, _: Caller = owner("supervisor")) -> Response:
    """One chart of the dashboard as an SVG document."""
    found = await _chart(request, name)
    if isinstance(found, Response):
        return found
    return Response(found.svg, media_type="image/svg+xml", headers=SVG_HEADERS)


@router.get("/charts/{name}.csv")
async def chart_csv(request: Request, name: str, _: Caller = owner("supervisor")) -> Response:
    """The data of one chart of the dashboard as CSV."""
    found = await _chart(request, name)
    if isinstance(found, Response):
        return found
    return Response(
        found.csv(),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{found.name}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
