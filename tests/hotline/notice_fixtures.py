"""What the notice, host link and removal check tests share: a real SMTP server (aiosmtpd), a
real webhook receiver, and confirmed routes made by the real path (a report, its traced URL,
an item of a synthetic photo served by a local site, an analyst's vote, the routing's
proposal and an analyst's confirmation)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from argon2 import Parameters, Type

from childguard.accounts import create_user
from childguard.accounts.passwords import use_parameters
from childguard.hotline import routing
from childguard.hotline.assessments import VoteSettings, record_vote
from childguard.hotline.items import Place, record_content
from childguard.hotline.notices import NoticeSettings, NoticeTransport
from childguard.hotline.removal import RemovalSettings
from childguard.hotline.reports import create_report, mark_url, report_urls
from childguard.pipeline import hash_bytes
from childguard.store.db import Store
from hotline.hotline_site import Site
from hotline.referral_fixtures import Inbox, free_port, smtp_inbox
from local_http import serving
from sample_media import jpeg_bytes

CHEAP_ARGON2 = Parameters(Type.ID, 19, 16, 32, 1, 1024, 1)
BASELINE = {"age_band": "prepubescent", "severity": "A"}
HARVESTED = {"age_band": "prepubescent", "severity": "posed", "harvested": True}
ABUSE_EMAIL = "abuse@host.example"
LINK_KEY = b"k" * 32
WEBHOOK_SECRET = "notice-webhook-secret"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
__all__ = ["Inbox", "free_port"]  # the notice tests take them from here


def body_of(message: Message) -> str:
    """The decoded plain-text body of a received email."""
    raw = message.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return raw.decode("utf-8").replace("\r\n", "\n")


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 that keeps what it receives."""
    with smtp_inbox() as box:
        yield box


@dataclass
class Receiver:
    url: str = ""
    status: int = 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def payloads(self) -> list[Any]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 that keeps the webhooks it receives."""
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(got.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler, "/notices") as got.url:
        yield got


def notice_settings(**kw: Any) -> NoticeSettings:
    values: dict[str, Any] = {
        "link_key": LINK_KEY,
        "link_base": "http://hotline.test",
        "notifier_name": "Test Hotline",
        "notifier_email": "notices@hotline.test",
        "renotice": timedelta(hours=24),
        "escalate_after": 3,
        "link_days": 30,
    }
    values.update(kw)
    return NoticeSettings(**values)


def transport(inbox: Inbox | None = None, **kw: Any) -> NoticeTransport:
    return NoticeTransport(
        smtp=inbox.smtp() if inbox is not None else None,
        webhook_secret=lambda address: WEBHOOK_SECRET,
        **kw,
    )


def removal_settings(**kw: Any) -> RemovalSettings:
    values: dict[str, Any] = {
        "interval": timedelta(hours=6),
        "verify_after": timedelta(hours=24),
        "allow_private": True,
        "timeout": 10.0,
    }
    values.update(kw)
    return RemovalSettings(**values)


def analyst(store: Store) -> int:
    """A new analyst's user id (its password hashed at a test's cost)."""
    use_parameters(CHEAP_ARGON2)
    try:
        return create_user(
            store,
            f"analyst-{secrets.token_hex(4)}",
            "a long test password",
            actor="test",
            roles=["analyst"],
        ).id
    finally:
        use_parameters(None)


def routed(
    store: Store,
    site: Site,
    seed: int,
    *,
    facts: dict[str, Any] | None = None,
    path: str | None = None,
    abuse: str | None = ABUSE_EMAIL,
    confirm: bool = True,
    now: datetime = T0,
) -> list[int]:
    """Route ids of a photo served by `site` at `path`, reported, traced (with an RDAP abuse
    contact), assessed by one analyst's vote, proposed and (by default) confirmed."""
    data = jpeg_bytes(seed)
    path = path or f"/media/{seed}.jpg"
    site.image(path, data)
    url = site.url(path)
    report = create_report(store, [url], channel="api", reporter="key:test", enqueue=False)
    url_id = report_urls(store, report.id)[0].id
    mark_url(store, url_id, "fetched", final_url=url, content_type="image/jpeg")
    trace: dict[str, Any] = {"country": "BE", "addresses": [{"ip": "127.0.0.1"}]}
    if abuse:
        trace["abuse"] = {"handle": "ABUSE-1", "name": "Host Abuse Desk", "email": abuse}
    mark_url(store, url_id, "traced", trace=trace)
    outcome = record_content(
        store,
        hash_bytes(data, path=url),
        [],
        Place(url=url, report_id=report.id, report_url_id=url_id),
    )
    mark_url(store, url_id, "in-review")
    record_vote(
        store,
        outcome.item_id,
        analyst(store),
        facts or BASELINE,
        None,
        VoteSettings(votes_needed=1),
    )
    routes = routing.propose_routes(store, default_home="BE", now=now)
    ids = [r.id for r in routes if r.item_id == outcome.item_id]
    assert ids, "the routing proposed no route"
    if confirm:
        routing.confirm(store, ids, actor="user:1", check_after=timedelta(hours=6), now=now)
    return ids
