"""The public report form in real headless Chromium, in each of its four languages: the
browser's language picks the form's, the report is filed, and the confirmation and the status
page answer in that language."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from childguard.service.web.report_pages import CATALOGS
from childguard.store.hotline_models import Report
from service.conftest import LiveServer, live_server

BROWSER_LOCALES = {"nl": "nl-BE", "fr": "fr-BE", "de": "de-DE", "en": "en-GB"}


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The service with its workers off: the reports are filed, never fetched."""
    base = tmp_path_factory.mktemp("report-form")
    with live_server(
        f"sqlite:///{base / 'store.db'}", base / "index", scheduler_enabled=False
    ) as running:
        yield running


def _text(language: str, message: str) -> str:
    return CATALOGS[language].gettext(message)


@pytest.mark.parametrize("language", list(BROWSER_LOCALES))
def test_a_report_through_the_form_in_each_language(
    browser: Any, report_server: LiveServer, tmp_path: Path, language: str
) -> None:
    context = browser.new_context(base_url=report_server.url, locale=BROWSER_LOCALES[language])
    try:
        page = context.new_page()
        page.goto("/report")
        assert page.get_attribute("html", "lang") == language
        assert _text(language, "Send report") in page.inner_text("form")
        url = f"https://example.test/{language}/page.html"
        page.fill("#urls", url)
        page.fill("#description", f"a test report in {language}")
        page.click("button[type=submit]")
        page.wait_for_selector("#tracking-code")
        thanks = _text(language, "Thank you, your report was received")
        assert thanks in page.inner_text("h1")
        if language != "en":
            assert thanks != "Thank you, your report was received"
        code = page.inner_text("#tracking-code").strip()
        with report_server.store.session() as s:
            descriptions = s.scalars(select(Report.description)).all()
        assert f"a test report in {language}" in descriptions

        with page.expect_navigation():
            page.click(f"text={_text(language, 'Check a report you made')}")
        page.fill("input[name=tracking_code]", code)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert url in page.inner_text("main")
        assert _text(language, "Received") in page.inner_text("main")
    finally:
        context.close()
