# Owns the hotline's statistics: times to referral, notice and removal; INHOPE-style counts.
"""Read-only statistics of the hotline, for the supervisors' dashboard and the API.

Times are measured from `item_route.reported_at` (when the URL was first reported) to the
route's referral (`referred_at` for police, `forwarded_at` for a partner hotline), its first
notice (`notified_at`) and its removal (`removed_at`), in hours. Only routes that were
confirmed by an analyst and lead somewhere (route not `closed`) count: nothing else ever
leaves the hotline. A route still online counts in the share removed within 1, 3 and 7 days
as not removed.

Percentiles are computed here in Python over the rows, not in SQL, so that SQLite and
PostgreSQL give the same figures: the median is `statistics.median`, the 90th percentile the
linearly interpolated one (`statistics.quantiles(..., n=10, method="inclusive")`, numpy's
default).

- `removal_times(store, group_by=...)`: one `TimeStats` per host, country, route, or for all;
- `weekly_removal(store, weeks=...)`: per ISO week, the routes removed and their median time;
- `removal_by_country(store)`: per hosting country, the routes, those removed and the share;
- `inhope_statistics(store, since=..., until=...)`: reports and URLs received, the items seen
  in the period by outcome, site type (the reporter's hint), hosting country (the host
  trace), labels per scheme and profile, new against already known, and the share of items
  that inherited an assessment.

Every result is a frozen dataclass with `to_dict()` (JSON) and `csv_rows()` (rows under its
`CSV_HEADER`); `to_csv(header, rows)` writes them.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

from sqlalchemy import func, select

from childguard.csv_safe import safe_row
from childguard.errors import InputFormatError
from childguard.hotline.items import KNOWN_ABUSE, inherited_share
from childguard.store.db import Store
from childguard.store.hotline_models import (
    Assessment,
    AssessmentLabel,
    Item,
    ItemPlace,
    Report,
    ReportUrl,
)
from childguard.store.referral_models import ItemRoute

GROUPS = ("host", "country", "route")
WITHIN_DAYS = (1, 3, 7)
ILLEGAL_OUTCOMES = ("baseline", "nationally-illegal")
DECIDING_KINDS = ("final", "supervisor", "inherited")
ALL = "all"
UNKNOWN = "unknown"
UNSPECIFIED = "unspecified"
PENDING = "pending"
MAX_WEEKS = 104


class InvalidStatistics(InputFormatError):
    """A statistics query that cannot be answered: an unknown grouping, a period that ends
    before it starts, a number of weeks out of range."""


def _hours(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return (end - start).total_seconds() / 3600.0


def median(values: Sequence[float]) -> float | None:
    """The median of `values`; None when there are none."""
    return float(statistics.median(values)) if values else None


def p90(values: Sequence[float]) -> float | None:
    """The linearly interpolated 90th percentile of `values`; None when there are none."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])
    return float(statistics.quantiles(values, n=10, method="inclusive")[8])


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """`rows` under `header` as CSV text (floats to three decimals, None as empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(safe_row(_text(v) for v in row))
    return out.getvalue()


@dataclass(frozen=True)
class Durations:
    """How many routes reached one step, and the median and 90th percentile of the hours
    it took them from the report."""

    count: int
    median_hours: float | None
    p90_hours: float | None

    @classmethod
    def of(cls, hours: Sequence[float]) -> Durations:
        return cls(len(hours), median(hours), p90(hours))

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "median_hours": _rounded(self.median_hours),
            "p90_hours": _rounded(self.p90_hours),
        }


@dataclass(frozen=True)
class TimeStats:
    """The times of the routes of one group (a host, a country, a route, or all of them):
    to referral, to notice, to removal, and the share removed within 1, 3 and 7 days."""

    CSV_HEADER: ClassVar[tuple[str, ...]] = (
        "group",
        "key",
        "routes",
        "referred",
        "referral_median_hours",
        "referral_p90_hours",
        "notified",
        "notice_median_hours",
        "notice_p90_hours",
        "removed",
        "removal_median_hours",
        "removal_p90_hours",
        *(f"removed_within_{d}d" for d in WITHIN_DAYS),
    )

    group: str
    key: str
    routes: int
    referral: Durations
    notice: Durations
    removal: Durations
    removed_within: dict[int, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "key": self.key,
            "routes": self.routes,
            "referral": self.referral.to_dict(),
            "notice": self.notice.to_dict(),
            "removal": self.removal.to_dict(),
            "removed_within_days": {str(d): round(s, 4) for d, s in self.removed_within.items()},
        }

    def csv_rows(self) -> list[tuple[Any, ...]]:
        return [
            (
                self.group,
                self.key,
                self.routes,
                self.referral.count,
                self.referral.median_hours,
                self.referral.p90_hours,
                self.notice.count,
                self.notice.median_hours,
                self.notice.p90_hours,
                self.removal.count,
                self.removal.median_hours,
                self.removal.p90_hours,
                *(self.removed_within[d] for d in WITHIN_DAYS),
            )
        ]


@dataclass(frozen=True)
class _RouteTimes:
    host: str
    country: str
    route: str
    referral: float | None
    notice: float | None
    removal: float | None


def _check_period(since: datetime | None, until: datetime | None) -> None:
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidStatistics(f"{name} must carry a time zone (UTC)")
    if since is not None and until is not None and until <= since:
        raise InvalidStatistics("the period must end after it starts (until > since)")


def _route_times(store: Store, since: datetime | None, until: datetime | None) -> list[_RouteTimes]:
    """The confirmed routes that lead somewhere, reported in [since, until)."""
    _check_period(since, until)
    query = select(
        ItemRoute.host,
        ItemRoute.country,
        ItemRoute.route,
        ItemRoute.reported_at,
        ItemRoute.referred_at,
        ItemRoute.forwarded_at,
        ItemRoute.notified_at,
        ItemRoute.removed_at,
    ).where(ItemRoute.route != "closed", ItemRoute.confirmed_at.is_not(None))
    if since is not None:
        query = query.where(ItemRoute.reported_at >= since)
    if until is not None:
        query = query.where(ItemRoute.reported_at < until)
    with store.session() as session:
        rows = session.execute(query.order_by(ItemRoute.id)).all()
    return [
        _RouteTimes(
            host=row.host,
            country=row.country or UNKNOWN,
            route=row.route,
            referral=_hours(row.reported_at, row.referred_at or row.forwarded_at),
            notice=_hours(row.reported_at, row.notified_at),
            removal=_hours(row.reported_at, row.removed_at),
        )
        for row in rows
    ]


def _stats(group: str, key: str, routes: Sequence[_RouteTimes]) -> TimeStats:
    def present(values: Iterable[float | None]) -> list[float]:
        return [v for v in values if v is not None]

    removal = present(r.removal for r in routes)
    within = {
        days: (sum(1 for h in removal if h <= days * 24) / len(routes)) if routes else 0.0
        for days in WITHIN_DAYS
    }
    return TimeStats(
        group=group,
        key=key,
        routes=len(routes),
        referral=Durations.of(present(r.referral for r in routes)),
        notice=Durations.of(present(r.notice for r in routes)),
        removal=Durations.of(removal),
        removed_within=within,
    )


def removal_times(
    store: Store,
    *,
    group_by: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[TimeStats]:
    """The times to referral, notice and removal of the routes reported in [since, until),
    one `TimeStats` per host, country or route (`group_by`; most routes first), or one for
    all of them (`group_by` None, also when there are no routes)."""
    if group_by is not None and group_by not in GROUPS:
        raise InvalidStatistics(f"group_by must be one of {', '.join(GROUPS)}, not {group_by!r}")
    routes = _route_times(store, since, until)
    if group_by is None:
        return [_stats(ALL, ALL, routes)]
    groups: dict[str, list[_RouteTimes]] = defaultdict(list)
    for route in routes:
        groups[getattr(route, group_by)].append(route)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return [_stats(group_by, key, members) for key, members in ordered]


@dataclass(frozen=True)
class WeekStats:
    """The routes removed in one ISO week, and the hours they took from the report."""

    CSV_HEADER: ClassVar[tuple[str, ...]] = (
        "week",
        "starts",
        "removed",
        "removal_median_hours",
        "removal_p90_hours",
    )

    week: str
    starts: date
    removed: int
    median_hours: float | None
    p90_hours: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "starts": self.starts.isoformat(),
            "removed": self.removed,
            "median_hours": _rounded(self.median_hours),
            "p90_hours": _rounded(self.p90_hours),
        }

    def csv_rows(self) -> list[tuple[Any, ...]]:
        return [
            (self.week, self.starts.isoformat(), self.removed, self.median_hours, self.p90_hours)
        ]


def iso_week(day: date) -> str:
    """`day`'s ISO week as `YYYY-Www`."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def weekly_removal(
    store: Store, *, weeks: int = 12, now: datetime | None = None
) -> list[WeekStats]:
    """The last `weeks` ISO weeks up to `now`'s (oldest first, weeks without a removal
    included): per week, the routes removed in it and the median and 90th percentile of the
    hours from their report to their removal."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise InvalidStatistics(f"weeks must be 1-{MAX_WEEKS}, not {weeks}")
    current = (now or datetime.now(UTC)).astimezone(UTC)
    this_monday = current.date() - timedelta(days=current.date().weekday())
    first_monday = this_monday - timedelta(weeks=weeks - 1)
    start = datetime(first_monday.year, first_monday.month, first_monday.day, tzinfo=UTC)
    end = datetime(this_monday.year, this_monday.month, this_monday.day, tzinfo=UTC) + timedelta(
        weeks=1
    )
    query = select(ItemRoute.reported_at, ItemRoute.removed_at).where(
        ItemRoute.route != "closed",
        ItemRoute.confirmed_at.is_not(None),
        ItemRoute.removed_at >= start,
        ItemRoute.removed_at < end,
    )
    with store.session() as session:
        rows = session.execute(query).all()
    by_week: dict[date, list[float]] = defaultdict(list)
    for reported_at, removed_at in rows:
        if removed_at is None:
            continue
        day = removed_at.astimezone(UTC).date()
        monday = day - timedelta(days=day.weekday())
        by_week[monday].append((removed_at - reported_at).total_seconds() / 3600.0)
    out = []
    for n in range(weeks):
        monday = first_monday + timedelta(weeks=n)
        hours = by_week.get(monday, [])
        out.append(WeekStats(iso_week(monday), monday, len(hours), median(hours), p90(hours)))
    return out


@dataclass(frozen=True)
class CountryRemoval:
    """The routes whose host is in one country, how many were removed, and the share."""

    CSV_HEADER: ClassVar[tuple[str, ...]] = ("country", "routes", "removed", "share_removed")

    country: str
    routes: int
    removed: int

    @property
    def share(self) -> float:
        return self.removed / self.routes if self.routes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "country": self.country,
            "routes": self.routes,
            "removed": self.removed,
            "share_removed": round(self.share, 4),
        }

    def csv_rows(self) -> list[tuple[Any, ...]]:
        return [(self.country, self.routes, self.removed, self.share)]


def removal_by_country(
    store: Store, *, since: datetime | None = None, until: datetime | None = None
) -> list[CountryRemoval]:
    """Per hosting country (`unknown` where the trace found none), the routes reported in
    [since, until), how many of them are removed, most routes first."""
    routes = _route_times(store, since, until)
    total: Counter[str] = Counter(r.country for r in routes)
    removed: Counter[str] = Counter(r.country for r in routes if r.removal is not None)
    ordered = sorted(total, key=lambda c: (-total[c], c))
    return [CountryRemoval(c, total[c], removed[c]) for c in ordered]


@dataclass(frozen=True)
class Count:
    """One key of a breakdown: how many, and how many of them were illegal."""

    key: str
    total: int
    illegal: int

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "total": self.total, "illegal": self.illegal}


@dataclass(frozen=True)
class LabelCount:
    """How many items one label of one scheme and profile was given to."""

    scheme: str
    profile: str
    label: str
    items: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "profile": self.profile,
            "label": self.label,
            "items": self.items,
        }


@dataclass(frozen=True)
class InhopeStatistics:
    """INHOPE-style statistics of a period: what was reported, the items seen in it (each
    item once, at every place it was seen in the period), their outcomes, site types,
    hosting countries, labels, new against already known, and the inherited share."""

    CSV_HEADER: ClassVar[tuple[str, ...]] = ("section", "key", "total", "illegal")

    since: datetime | None
    until: datetime | None
    reports: int
    urls: int
    items: int
    outcomes: list[Count]
    site_types: list[Count]
    hosting_countries: list[Count]
    labels: list[LabelCount]
    new_items: int
    known_items: int
    inherited_share: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "reports": self.reports,
            "urls": self.urls,
            "items": self.items,
            "outcomes": [c.to_dict() for c in self.outcomes],
            "site_types": [c.to_dict() for c in self.site_types],
            "hosting_countries": [c.to_dict() for c in self.hosting_countries],
            "labels": [c.to_dict() for c in self.labels],
            "new_items": self.new_items,
            "known_items": self.known_items,
            "inherited_share": round(self.inherited_share, 4),
        }

    def csv_rows(self) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = [
            ("reports", ALL, self.reports, ""),
            ("urls", ALL, self.urls, ""),
            ("items", ALL, self.items, ""),
            ("items", "new", self.new_items, ""),
            ("items", "known", self.known_items, ""),
            ("items", "inherited_share", self.inherited_share, ""),
        ]
        for section, counts in (
            ("outcome", self.outcomes),
            ("site_type", self.site_types),
            ("hosting_country", self.hosting_countries),
        ):
            rows.extend((section, c.key, c.total, c.illegal) for c in counts)
        rows.extend((f"label:{c.scheme}/{c.profile}", c.label, c.items, "") for c in self.labels)
        return rows


def _known(item: Any, since: datetime | None) -> bool:
    """Already known: matched a known-abuse bank, seen before (in an earlier report or crawl,
    or before the period), a near copy of another item, or given an inherited decision."""
    return (
        any(m.get("bank_kind") == KNOWN_ABUSE for m in item.matches or [])
        or item.times_seen > 1
        or item.duplicate_of is not None
        or item.state == "inherited"
        or (since is not None and item.first_seen < since)
    )


def _counts(total: Counter[str], illegal: Counter[str]) -> list[Count]:
    return [Count(k, total[k], illegal[k]) for k in sorted(total, key=lambda k: (-total[k], k))]


def _within(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    conditions = []
    if since is not None:
        conditions.append(column >= since)
    if until is not None:
        conditions.append(column < until)
    return conditions


def inhope_statistics(
    store: Store, *, since: datetime | None = None, until: datetime | None = None
) -> InhopeStatistics:
    """The INHOPE-style statistics of [since, until) (all time where a bound is None):
    reports and URLs received; the items seen at a place first seen in the period, by
    outcome, new or already known; each place's site type (its report's `site_type` hint)
    and hosting country (its URL's host trace); the labels of each item's deciding
    assessment; and the share of the period's items that inherited an assessment (of all
    items when the period is all time, as `items.inherited_share`)."""
    _check_period(since, until)
    with store.session() as session:
        reports = session.scalar(
            select(func.count())
            .select_from(Report)
            .where(*_within(Report.received_at, since, until))
        )
        urls = session.scalar(
            select(func.count())
            .select_from(ReportUrl)
            .join(Report, Report.id == ReportUrl.report_id)
            .where(*_within(Report.received_at, since, until))
        )
        places = session.execute(
            select(ItemPlace.item_id, Report.hints, ReportUrl.trace)
            .outerjoin(Report, Report.id == ItemPlace.report_id)
            .outerjoin(ReportUrl, ReportUrl.id == ItemPlace.report_url_id)
            .where(*_within(ItemPlace.first_seen, since, until))
            .order_by(ItemPlace.id)
        ).all()
        item_ids = sorted({p.item_id for p in places})
        items = (
            {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(item_ids))).all()}
            if item_ids
            else {}
        )
        deciding: dict[int, int] = {}
        if item_ids:
            for assessment_id, item_id in session.execute(
                select(Assessment.id, Assessment.item_id)
                .where(Assessment.item_id.in_(item_ids), Assessment.kind.in_(DECIDING_KINDS))
                .order_by(Assessment.created_at, Assessment.id)
            ):
                deciding[item_id] = assessment_id  # the latest wins
        label_counts: Counter[tuple[str, str, str]] = Counter()
        if deciding:
            for scheme, profile, label in session.execute(
                select(
                    AssessmentLabel.scheme, AssessmentLabel.profile, AssessmentLabel.label
                ).where(AssessmentLabel.assessment_id.in_(sorted(deciding.values())))
            ):
                label_counts[(scheme, profile, label)] += 1
        outcome_of = {i: (row.outcome or PENDING) for i, row in items.items()}
        known = {i for i, row in items.items() if _known(row, since)}
        inherited = sum(1 for row in items.values() if row.state == "inherited")

    outcomes: Counter[str] = Counter(outcome_of.values())
    illegal_outcomes: Counter[str] = Counter(
        o for o in outcome_of.values() if o in ILLEGAL_OUTCOMES
    )
    site_total: Counter[str] = Counter()
    site_illegal: Counter[str] = Counter()
    country_total: Counter[str] = Counter()
    country_illegal: Counter[str] = Counter()
    for place in places:
        site = (place.hints or {}).get("site_type") or UNSPECIFIED
        country = (place.trace or {}).get("country") or UNKNOWN
        illegal = outcome_of.get(place.item_id) in ILLEGAL_OUTCOMES
        site_total[site] += 1
        country_total[country] += 1
        if illegal:
            site_illegal[site] += 1
            country_illegal[country] += 1
    if since is None and until is None:
        share = inherited_share(store)
    else:
        share = inherited / len(items) if items else 0.0
    return InhopeStatistics(
        since=since,
        until=until,
        reports=reports or 0,
        urls=urls or 0,
        items=len(items),
        outcomes=_counts(outcomes, illegal_outcomes),
        site_types=_counts(site_total, site_illegal),
        hosting_countries=_counts(country_total, country_illegal),
        labels=[
            LabelCount(scheme, profile, label, n)
            for (scheme, profile, label), n in sorted(
                label_counts.items(), key=lambda kv: (kv[0][0], kv[0][1], -kv[1], kv[0][2])
            )
        ],
        new_items=len(items) - len(known),
        known_items=len(known),
        inherited_share=share,
    )


__all__ = [
    "GROUPS",
    "WITHIN_DAYS",
    "Count",
    "CountryRemoval",
    "Durations",
    "InhopeStatistics",
    "InvalidStatistics",
    "LabelCount",
    "TimeStats",
    "WeekStats",
    "inhope_statistics",
    "iso_week",
    "median",
    "p90",
    "removal_by_country",
    "removal_times",
    "to_csv",
    "weekly_removal",
]
