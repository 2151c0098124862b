"""The statistics routes on the real server, on SQLite and PostgreSQL: the times to removal
per host, country and route as JSON and as CSV that parses back, removals per week and by
country, the INHOPE-style statistics, and the refusals."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from hotline.routed_items import T0, WEEK, build_plan

from .conftest import LiveServer, live_server


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The service on SQLite and PostgreSQL, without its scheduler: the removal checks would
    re-fetch the plan's made-up URLs, which are due, and change the figures under test."""
    with live_server(store_url, tmp_path / "index", scheduler_enabled=False) as running:
        yield running


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_statistics_as_json_and_csv(server: LiveServer) -> None:
    build_plan(server.store)
    with server.client("supervisor") as api:
        everything = api.get("/v1/hotline/statistics/removal")
        assert everything.status_code == 200, everything.text
        (group,) = everything.json()["groups"]
        assert group["routes"] == 6
        assert group["removal"] == {"count": 5, "median_hours": 30.0, "p90_hours": 80.0}
        assert group["removed_within_days"] == {"1": 0.3333, "3": 0.6667, "7": 0.8333}

        hosts = api.get("/v1/hotline/statistics/removal", params={"group_by": "host"}).json()
        assert [g["key"] for g in hosts["groups"]] == ["a.test", "b.test", "c.test"]
        answer = api.get("/v1/hotline/statistics/removal.csv", params={"group_by": "country"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert 'filename="removal.csv"' in answer.headers["content-disposition"]
        rows = _csv(answer.text)
        assert [(r["key"], r["routes"], r["removed"]) for r in rows] == [
            ("BE", "4", "3"),
            ("NL", "2", "2"),
        ]
        assert rows[1]["removal_median_hours"] == "75.000"

        later = api.get(
            "/v1/hotline/statistics/removal",
            params={"since": (T0 + WEEK).replace(tzinfo=None).isoformat()},  # no zone: UTC
        ).json()
        assert later["groups"][0]["routes"] == 2

        countries = _csv(api.get("/v1/hotline/statistics/countries.csv").text)
        assert countries[0] == {
            "country": "BE",
            "routes": "4",
            "removed": "3",
            "share_removed": "0.750",
        }
        last = {"until": (T0 + 2 * WEEK).isoformat()}
        weekly = api.get("/v1/hotline/statistics/weekly", params={"weeks": 4, **last}).json()
        assert [(w["week"], w["removed"]) for w in weekly["weeks"]] == [
            ("2026-W44", 0),
            ("2026-W45", 3),
            ("2026-W46", 2),
            ("2026-W47", 0),
        ]
        weeks = _csv(api.get("/v1/hotline/statistics/weekly.csv", params={"weeks": 2, **last}).text)
        assert [(w["week"], w["removal_median_hours"]) for w in weeks] == [
            ("2026-W46", "75.000"),
            ("2026-W47", ""),
        ]

        inhope = api.get("/v1/hotline/statistics/inhope").json()
        assert (inhope["reports"], inhope["items"], inhope["new_items"]) == (8, 8, 7)
        assert inhope["inherited_share"] == 0.125
        assert {"key": "NL", "total": 2, "illegal": 2} in inhope["hosting_countries"]
        figures = _csv(api.get("/v1/hotline/statistics/inhope.csv").text)
        assert {"section": "site_type", "key": "forum", "total": "2", "illegal": "2"} in figures

        refused = api.get("/v1/hotline/statistics/removal", params={"group_by": "colour"})
        assert refused.status_code == 422
        assert refused.headers["content-type"] == "application/problem+json"
        backwards = api.get(
            "/v1/hotline/statistics/inhope",
            params={"since": T0.isoformat(), "until": (T0 - WEEK).isoformat()},
        )
        assert backwards.status_code == 422 and "end after" in backwards.json()["detail"]
        assert api.get("/v1/hotline/statistics/weekly?weeks=0").status_code == 422

    with server.client("analyst") as other:
        assert other.get("/v1/hotline/statistics/removal").status_code == 403
    with closing(server.user_client("supervisor")) as person:
        assert person.get("/v1/hotline/statistics/removal.csv").status_code == 200
