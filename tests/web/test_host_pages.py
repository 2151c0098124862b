"""The host's notice link in real headless Chromium, without an account: the notice shows, the
host says the content is removed (once: the form is gone after), comments, and a link with one
character changed shows the same page as any invalid link."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from childguard.hotline import notices
from childguard.service import Settings
from childguard.service.hotline_tasks import notice_settings
from childguard.service.secret_key import service_secret_key
from childguard.store.base import utcnow
from hotline.hotline_site import serving
from hotline.notice_fixtures import Inbox, body_of, inbox, routed, transport
from service.conftest import LiveServer, live_server

__all__ = ["inbox"]
TOKEN = re.compile(r"/host/notice/([A-Za-z0-9_-]{43})")


@pytest.fixture
def host_server(tmp_path: Path) -> Iterator[LiveServer]:
    with live_server(
        f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "index", scheduler_enabled=False
    ) as running:
        yield running


def test_a_host_answers_a_notice_through_its_link(
    browser: Any, host_server: LiveServer, inbox: Inbox, tmp_path: Path
) -> None:
    secret = service_secret_key(Settings(db_url="sqlite://", data_dir=tmp_path))
    with serving() as site:
        route_ids = routed(host_server.store, site, 51, path="/shown.jpg", now=utcnow())
    draft = notices.create_notice(
        host_server.store, route_ids, recipient_kind="host", channel="email", actor="user:1"
    )
    notices.send_notice(
        host_server.store,
        draft.id,
        actor="user:1",
        transport=transport(inbox),
        settings=notice_settings(Settings(db_url="sqlite://"), secret),
    )
    found = TOKEN.search(body_of(inbox.messages[0]))
    assert found is not None
    token = found.group(1)
    context = browser.new_context(base_url=host_server.url)
    try:
        page = context.new_page()
        answer = page.goto(f"/host/notice/{token}")
        assert answer is not None and answer.status == 200
        assert draft.reference in page.inner_text("h1")
        assert site.url("/shown.jpg") in page.inner_text("#host-urls")
        assert page.locator("img").count() == 0
        page.fill("#removed-comment", "deleted from our servers")
        page.click("#host-removed-form button[type=submit]")
        page.wait_for_selector("#host-message")
        assert "our check confirms" in page.inner_text("#host-message")
        assert page.locator("#host-removed-form").count() == 0  # one claim only
        assert page.locator("#host-claimed").count() == 1
        page.fill("#comment", "ticket 4711")
        page.click("#host-comment-form button[type=submit]")
        page.wait_for_selector("#host-message")
        assert "ticket 4711" in page.inner_text("main")

        altered = token[:-1] + ("A" if token[-1] != "A" else "B")
        refused = page.goto(f"/host/notice/{altered}")
        assert refused is not None and refused.status == 404
        assert "not valid or has expired" in page.inner_text("#host-error")
        assert draft.reference not in page.content()
    finally:
        context.close()
    events = [e.kind for e in notices.get_notice(host_server.store, draft.id).events]
    assert events.count("claimed-removed") == 1 and events.count("comment") == 1
