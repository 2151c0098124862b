"""Notices over HTTP against the real service (SQLite and PostgreSQL): a draft from confirmed
routes, the analyst's confirmation sending it to a real SMTP server, the host's link opened
without an account (one claim, a second refused, a tampered or expired token 404 alike, forms
refused without their token), and the removal check finding the file taken down from a local
site."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from childguard.hotline import destinations, notices, referrals, routing
from childguard.service import Settings, hotline_tasks
from childguard.service.hotline_tasks import notice_settings
from childguard.service.scheduler import SchedulerContext, build_scheduler
from childguard.service.secret_key import service_secret_key
from childguard.store import open_store
from childguard.store.base import utcnow
from childguard.store.referral_models import Referral
from hotline.hotline_site import serving
from hotline.notice_fixtures import Inbox, body_of, inbox, routed, transport

from .conftest import LiveServer, live_server
from .test_routing_api import _assessed

__all__ = ["inbox"]
TOKEN_IN_LINK = re.compile(r"/host/notice/([A-Za-z0-9_-]{43})")
FORM_TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@pytest.fixture
def notice_server(
    store_url: str, tmp_path: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    """The service with SMTP pointing at the test's server, private fetches allowed (the
    local site), and no scheduler (the test moves the clock itself)."""
    monkeypatch.setenv("CHILDGUARD_SMTP_HOST", inbox.host)
    monkeypatch.setenv("CHILDGUARD_SMTP_PORT", str(inbox.port))
    monkeypatch.setenv("CHILDGUARD_SMTP_FROM", "hotline@childguard.test")
    with live_server(
        store_url, tmp_path / "index", allow_private_fetch=True, scheduler_enabled=False
    ) as running:
        yield running


def _token(inbox: Inbox, index: int = -1) -> str:
    found = TOKEN_IN_LINK.search(body_of(inbox.messages[index]))
    assert found, "the notice carries no host link"
    return found.group(1)


def test_a_notice_over_http_from_draft_to_the_removal_check(
    notice_server: LiveServer, inbox: Inbox
) -> None:
    server = notice_server
    with (
        serving() as site,
        server.client("analyst") as analyst,
        httpx.Client(base_url=server.url, timeout=30) as host,
    ):
        route_ids = routed(server.store, site, 31, path="/up.jpg", now=utcnow())
        unconfirmed = routed(server.store, site, 32, confirm=False, now=utcnow())
        refused = analyst.post(
            "/v1/hotline/notices",
            json={"route_ids": unconfirmed, "recipient_kind": "host", "channel": "email"},
        )
        assert refused.status_code == 409
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("route-not-confirmed")

        made = analyst.post(
            "/v1/hotline/notices",
            json={"route_ids": route_ids, "recipient_kind": "host", "channel": "email"},
        )
        assert made.status_code == 201, made.text
        draft = made.json()
        assert draft["state"] == "draft" and draft["address"] == "abuse@host.example"
        assert site.url("/up.jpg") in draft["preview"]["body"] and draft["host_link"] is None
        assert inbox.messages == []  # a draft never leaves

        sent = analyst.post(f"/v1/hotline/notices/{draft['id']}/send")
        assert sent.status_code == 200, sent.text
        assert sent.json()["state"] == "open" and sent.json()["sends"] == 1
        assert sent.json()["confirmed_by"].startswith("key:")
        assert len(inbox.messages) == 1 and inbox.messages[0]["To"] == "abuse@host.example"
        again = analyst.post(f"/v1/hotline/notices/{draft['id']}/send")
        assert again.status_code == 409 and again.json()["type"].endswith("notice-sent")
        listed = analyst.get("/v1/hotline/notices", params={"state": "open"}).json()
        assert [n["id"] for n in listed["items"]] == [draft["id"]]
        detail = analyst.get(f"/v1/hotline/notices/{draft['id']}").json()
        assert [s["state"] for s in detail["sendings"]] == ["sent"]
        assert routing.get_route(server.store, route_ids[0]).state == "notified"

        token = _token(inbox)
        assert detail["host_link"].endswith(f"/host/notice/{token}")
        page = host.get(f"/host/notice/{token}")  # no account, no key
        assert page.status_code == 200
        assert draft["reference"] in page.text and site.url("/up.jpg") in page.text
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert "key:" not in page.text and "<img" not in page.text
        form = FORM_TOKEN.search(page.text)
        assert form is not None

        forged = host.post(f"/host/notice/{token}/removed", data={"comment": "gone"})
        assert forged.status_code == 403
        cross = host.post(
            f"/host/notice/{token}/removed",
            data={"csrf_token": form.group(1)},
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert cross.status_code == 403
        claim = host.post(
            f"/host/notice/{token}/removed",
            data={"csrf_token": form.group(1), "comment": "deleted"},
        )
        assert claim.status_code == 200 and "our check confirms" in claim.text
        second = host.post(f"/host/notice/{token}/removed", data={"csrf_token": form.group(1)})
        assert second.status_code == 409 and "reported already" in second.text
        noted = host.post(
            f"/host/notice/{token}/comment",
            data={"csrf_token": form.group(1), "comment": "ticket 4711"},
        )
        assert noted.status_code == 200 and "ticket 4711" in noted.text
        events = analyst.get(f"/v1/hotline/notices/{draft['id']}").json()["events"]
        kinds = [e["kind"] for e in events]
        assert kinds[0] == "viewed" and kinds.count("claimed-removed") == 1
        assert kinds.count("comment") == 1  # every use is recorded, each refused form a view

        # The claim is only a claim: the check finds the file still there ...
        still = analyst.post(f"/v1/hotline/routes/{route_ids[0]}/check")
        assert still.status_code == 200 and still.json()["result"] == "still-online"
        # ... until the host really takes it down.
        del site.routes["/up.jpg"]
        gone = analyst.post(f"/v1/hotline/routes/{route_ids[0]}/check")
        assert gone.json()["result"] == "removed" and gone.json()["state"] == "removed"
        unchecked = analyst.post(f"/v1/hotline/routes/{unconfirmed[0]}/check")
        assert unchecked.status_code == 409

        altered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
        bad = host.get(f"/host/notice/{altered}")
        assert bad.status_code == 404 and draft["reference"] not in bad.text
        bad_post = host.post(f"/host/notice/{altered}/removed", data={"csrf_token": "x"})
        assert bad_post.status_code == 404


def test_an_expired_link_is_refused_as_a_tampered_one(
    notice_server: LiveServer, inbox: Inbox, tmp_path: Path
) -> None:
    server = notice_server
    secret = service_secret_key(Settings(db_url="sqlite://", data_dir=tmp_path))
    settings = notice_settings(Settings(db_url="sqlite://"), secret)
    long_ago = utcnow() - timedelta(days=settings.link_days + 1)
    with serving() as site:
        route_ids = routed(server.store, site, 33, now=long_ago)
    draft = notices.create_notice(
        server.store, route_ids, recipient_kind="host", channel="email", actor="user:1"
    )
    notices.send_notice(
        server.store,
        draft.id,
        actor="user:1",
        transport=transport(inbox),
        settings=settings,
        now=long_ago,
    )
    token = _token(inbox)
    with httpx.Client(base_url=server.url, timeout=30) as host:
        expired = host.get(f"/host/notice/{token}")
        unknown = host.get(f"/host/notice/{'A' * 43}")
    assert expired.status_code == unknown.status_code == 404
    assert expired.text == unknown.text


def test_the_service_task_re_sends_due_notices_and_checks_removals(
    store_url: str, tmp_path: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHILDGUARD_SMTP_HOST", inbox.host)
    monkeypatch.setenv("CHILDGUARD_SMTP_PORT", str(inbox.port))
    config = Settings(db_url=store_url, data_dir=tmp_path, allow_private_fetch=True)
    secret = service_secret_key(config)
    store = open_store(store_url)
    try:
        yesterday = utcnow() - timedelta(hours=config.hotline_renotice_hours + 1)
        with serving() as site:
            (route_id,) = routed(store, site, 34, path="/late.jpg", now=yesterday)
            draft = notices.create_notice(
                store, [route_id], recipient_kind="host", channel="email", actor="user:1"
            )
            notices.send_notice(
                store,
                draft.id,
                actor="user:1",
                transport=transport(inbox),
                settings=notice_settings(config, secret),
                now=yesterday,
            )
            del site.routes["/late.jpg"]
            context = SchedulerContext(store=store, settings=config, secret_key=secret)
            first = build_scheduler(context)
            assert first.tasks["hotline-notices"].singleton
            first.run_now("hotline-notices")
            assert len(inbox.messages) == 2  # the re-notice that was due
            assert routing.get_route(store, route_id).state == "removed"  # the check ran too
            # A restarted service picks up where the store says: nothing is due again.
            build_scheduler(context).run_now("hotline-notices")
        assert len(inbox.messages) == 2
        assert notices.get_notice(store, draft.id).sends == 2
    finally:
        store.close()


def test_the_service_task_alone_routes_a_decided_item_and_settles_a_stale_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hotline_tasks, "NOTICE_SECONDS", 0.1)
    with live_server(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "index") as server:
        store = server.store
        police = destinations.create_destination(
            store, name="Police", kind="police", country="BE", channel="download", actor="t"
        )
        with store.session() as s:
            stale = Referral(
                reference="CG-R-2026-000001",
                destination_id=police.id,
                kind="police",
                state="sending",
                bundle_path="/nowhere.zip",
                bundle_sha256="0" * 64,
                manifest_sha256="0" * 64,
                byte_size=0,
                created_by="user:1",
                send_started_at=utcnow() - 2 * referrals.STALE_AFTER,
            )
            s.add(stale)
            s.flush()
            stale_id = stale.id
        item_id = _assessed(server, 71)
        deadline = time.monotonic() + 10
        while not routing.list_routes(store, item_id=item_id):
            assert time.monotonic() < deadline, "the task proposed no route"
            time.sleep(0.05)
        (route,) = routing.list_routes(store, item_id=item_id)
        assert (route.route, route.destination_id, route.state) == ("police", police.id, "assessed")
        while referrals.get_referral(store, stale_id).state != "uncertain":
            assert time.monotonic() < deadline, "the task left the stale send sending"
            time.sleep(0.05)
