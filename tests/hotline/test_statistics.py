"""The hotline's statistics over routes with known times, on SQLite and PostgreSQL: exact
medians, 90th percentiles and shares removed within 1, 3 and 7 days, per host, country and
route; removals per ISO week; removal by country; INHOPE-style counts."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from argon2 import Parameters, Type

from childguard.accounts.passwords import use_parameters
from childguard.hotline import statistics
from childguard.hotline.statistics import InvalidStatistics
from childguard.store.db import Store
from hotline.routed_items import T0, WEEK, build_plan, route_of


@pytest.fixture(autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    use_parameters(Parameters(Type.ID, 19, 16, 32, 1, 1024, 1))
    yield
    use_parameters(None)


def test_times_to_referral_notice_and_removal(store: Store) -> None:
    items = build_plan(store)
    assert route_of(store, items[4]).route == "hotline"
    (everything,) = statistics.removal_times(store)
    assert (everything.group, everything.key, everything.routes) == ("all", "all", 6)
    assert everything.referral.count == 6
    assert everything.referral.median_hours == pytest.approx(2.5)
    assert everything.referral.p90_hours == pytest.approx(5.0)
    assert everything.notice.median_hours == pytest.approx(7.0)
    assert everything.notice.p90_hours == pytest.approx(9.0)
    assert everything.removal.count == 5
    assert everything.removal.median_hours == pytest.approx(30.0)
    assert everything.removal.p90_hours == pytest.approx(80.0)
    assert everything.removed_within == {
        1: pytest.approx(2 / 6),
        3: pytest.approx(4 / 6),
        7: pytest.approx(5 / 6),
    }

    by_host = {s.key: s for s in statistics.removal_times(store, group_by="host")}
    assert list(by_host) == ["a.test", "b.test", "c.test"]
    assert (by_host["a.test"].removal.median_hours, by_host["a.test"].removal.p90_hours) == (
        pytest.approx(20.0),
        pytest.approx(28.0),
    )
    assert (by_host["b.test"].removal.median_hours, by_host["b.test"].removal.p90_hours) == (
        pytest.approx(75.0),
        pytest.approx(95.0),
    )
    assert by_host["b.test"].removed_within == {1: 0.0, 3: 0.5, 7: 1.0}
    assert by_host["c.test"].removal == statistics.Durations(0, None, None)
    assert by_host["c.test"].notice.median_hours == pytest.approx(10.0)

    by_country = {s.key: s.routes for s in statistics.removal_times(store, group_by="country")}
    assert by_country == {"BE": 4, "NL": 2}
    by_route = {
        s.key: s.referral.median_hours for s in statistics.removal_times(store, group_by="route")
    }
    assert by_route == {"police": pytest.approx(2.0), "hotline": pytest.approx(5.0)}

    (later,) = statistics.removal_times(store, since=T0 + timedelta(days=1))
    assert later.routes == 2 and later.removal.median_hours == pytest.approx(75.0)
    (earlier,) = statistics.removal_times(store, until=T0 + timedelta(days=1))
    assert earlier.routes == 4

    rows = list(
        csv.DictReader(
            io.StringIO(
                statistics.to_csv(
                    statistics.TimeStats.CSV_HEADER,
                    [row for s in by_host.values() for row in s.csv_rows()],
                )
            )
        )
    )
    assert rows[0]["key"] == "a.test" and rows[0]["removal_median_hours"] == "20.000"
    assert rows[2]["removal_median_hours"] == "" and rows[2]["removed_within_7d"] == "0.000"
    assert everything.to_dict()["removal"] == {"count": 5, "median_hours": 30.0, "p90_hours": 80.0}


def test_weekly_removal_and_removal_by_country(store: Store) -> None:
    build_plan(store)
    weeks = statistics.weekly_removal(store, weeks=3, now=T0 + 2 * WEEK + timedelta(days=2))
    assert [(w.week, w.starts.isoformat(), w.removed) for w in weeks] == [
        ("2026-W45", "2026-11-02", 3),
        ("2026-W46", "2026-11-09", 2),
        ("2026-W47", "2026-11-16", 0),
    ]
    assert [w.median_hours for w in weeks] == [pytest.approx(20.0), pytest.approx(75.0), None]
    assert statistics.weekly_removal(store, weeks=1, now=T0 + 2 * WEEK)[0].removed == 0

    countries = statistics.removal_by_country(store)
    assert [(c.country, c.routes, c.removed) for c in countries] == [("BE", 4, 3), ("NL", 2, 2)]
    assert countries[0].share == pytest.approx(0.75)
    assert countries[0].to_dict()["share_removed"] == 0.75


def test_inhope_statistics(store: Store) -> None:
    build_plan(store)
    found = statistics.inhope_statistics(store)
    assert (found.reports, found.urls, found.items) == (8, 8, 8)
    outcomes = {c.key: (c.total, c.illegal) for c in found.outcomes}
    assert outcomes == {"baseline": (7, 7), "not-illegal": (1, 0)}
    sites = {c.key: (c.total, c.illegal) for c in found.site_types}
    assert sites == {"image-host": (5, 4), "forum": (2, 2), "unspecified": (1, 1)}
    countries = {c.key: (c.total, c.illegal) for c in found.hosting_countries}
    assert countries == {"BE": (6, 5), "NL": (2, 2)}
    labels = {(c.scheme, c.profile, c.label): c.items for c in found.labels}
    assert labels[("inhope", "default", "baseline")] == 7
    assert labels[("inhope", "default", "not illegal")] == 1
    assert labels[("uk", "default", "A")] == 7
    assert (found.new_items, found.known_items) == (7, 1)  # the near copy inherited
    assert found.inherited_share == pytest.approx(1 / 8)

    later = statistics.inhope_statistics(store, since=T0 + timedelta(days=1))
    assert (later.items, later.new_items, later.known_items) == (3, 2, 1)
    assert later.inherited_share == pytest.approx(1 / 3)
    assert {c.key: c.total for c in later.site_types} == {"forum": 2, "image-host": 1}
    rows = [
        tuple(r)
        for r in csv.reader(io.StringIO(statistics.to_csv(found.CSV_HEADER, found.csv_rows())))
    ]
    assert ("hosting_country", "NL", "2", "2") in rows
    assert ("label:uk/default", "A", "7", "") in rows


def test_refusals(store: Store) -> None:
    with pytest.raises(InvalidStatistics, match="group_by"):
        statistics.removal_times(store, group_by="colour")
    with pytest.raises(InvalidStatistics, match="end after"):
        statistics.removal_times(store, since=T0, until=T0)
    with pytest.raises(InvalidStatistics, match="time zone"):
        statistics.inhope_statistics(store, since=datetime(2026, 1, 1))
    with pytest.raises(InvalidStatistics, match="weeks"):
        statistics.weekly_removal(store, weeks=0)
    (empty,) = statistics.removal_times(store)
    assert empty.routes == 0 and empty.removed_within == {1: 0.0, 3: 0.0, 7: 0.0}
    assert statistics.inhope_statistics(store).inherited_share == 0.0
