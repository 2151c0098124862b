"""The supervisors' dashboard in real headless Chromium: a supervisor signs in through the
page an unsigned browser is sent to, sees the time to removal and both charts drawn on the
server, and downloads a chart's CSV through the browser; an analyst is refused."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from childguard.accounts import create_user
from hotline.routed_items import build_plan
from service.conftest import LiveServer, live_server

# The period of the plan's routes: all of them, the weekly chart to 2026-W47.
PERIOD = "?until=2026-11-20&weeks=4"


@pytest.fixture(scope="module")
def dashboard_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    base = tmp_path_factory.mktemp("dashboard")
    # No scheduler: its removal checks would re-fetch the plan's made-up URLs, which are due.
    with live_server(
        f"sqlite:///{base / 'store.db'}", base / "index", scheduler_enabled=False
    ) as live:
        build_plan(live.store)
        yield live


def sign_in(browser: Any, live: LiveServer, target: str, *roles: str) -> Any:
    """A new browser context signed in as a new user holding `roles`, through the sign-in
    page `target` sends an unsigned browser to; the page, at `target`."""
    username = f"user-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    create_user(live.store, username, password, actor="test", roles=roles)
    context = browser.new_context(base_url=live.url, accept_downloads=True)
    page = context.new_page()
    page.goto(target)
    assert "/login?next=" in page.url
    page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    return page


def test_the_time_to_removal_and_the_charts_appear_and_a_chart_downloads_as_csv(
    browser: Any, dashboard_server: LiveServer, tmp_path: Path
) -> None:
    page = sign_in(browser, dashboard_server, f"/hotline/dashboard{PERIOD}", "supervisor")
    try:
        assert page.url.endswith(f"/hotline/dashboard{PERIOD}")
        assert page.inner_text("#removal-median") == "30.0 h"
        assert page.inner_text("#removal-p90") == "80.0 h (3.3 days)"
        assert page.inner_text("#within-1") == "33%" and page.inner_text("#within-7") == "83%"
        assert "a.test" in page.inner_text("#by-host") and "NL" in page.inner_text("#by-country")
        assert page.inner_text("#inherited-share") == "12%"

        for name in ("removal-weekly", "removal-by-country"):
            svg = page.locator(f"#figure-{name} svg")
            assert svg.is_visible() and svg.bounding_box()["width"] > 300
            root = ElementTree.fromstring(svg.evaluate("e => e.outerHTML"))
            assert root.find("{http://www.w3.org/2000/svg}title") is not None
        bars = page.locator("#figure-removal-by-country rect.bar")
        assert bars.count() == 2
        assert [bars.nth(i).get_attribute("data-label") for i in range(2)] == ["BE", "NL"]
        assert page.locator("#figure-removal-weekly circle.point").count() == 2

        with page.expect_download() as download_info:
            page.click("#csv-removal-weekly")
        download = download_info.value
        assert download.suggested_filename == "removal-weekly.csv"
        saved = tmp_path / "weekly.csv"
        download.save_as(saved)
        rows = list(csv.DictReader(io.StringIO(saved.read_text())))
        assert [(r["week"], r["removed"], r["removal_median_hours"]) for r in rows] == [
            ("2026-W44", "0", ""),
            ("2026-W45", "3", "20.000"),
            ("2026-W46", "2", "75.000"),
            ("2026-W47", "0", ""),
        ]
        svg = page.request.get(f"/hotline/dashboard/charts/removal-by-country.svg{PERIOD}")
        assert svg.status == 200 and svg.headers["content-type"].startswith("image/svg+xml")
        assert page.request.get("/hotline/dashboard/charts/nothing.svg").status == 404
    finally:
        page.context.close()


def test_an_analyst_is_refused_the_dashboard(browser: Any, dashboard_server: LiveServer) -> None:
    page = sign_in(browser, dashboard_server, "/hotline/dashboard", "analyst")
    try:
        assert "supervisor" in page.inner_text("#message")
        assert page.request.get("/hotline/dashboard").status == 403
    finally:
        page.context.close()
