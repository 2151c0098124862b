"""The real path to a referral for the bundle, referral and export tests: a report of a URL on
a site served on 127.0.0.1, processed into an item with sealed evidence, two analysts' votes,
a proposed and confirmed route; and real receivers (SMTP with aiosmtpd, HTTP) for sending."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message
from argon2 import Parameters, Type

from childguard.accounts import create_user
from childguard.accounts.passwords import use_parameters
from childguard.alerts.email import SmtpSettings
from childguard.hotline import processing, routing
from childguard.hotline.assessments import record_vote
from childguard.hotline.destinations import create_destination
from childguard.hotline.processing import ProcessingSettings
from childguard.hotline.reports import create_report
from childguard.store import open_store
from childguard.store.db import Store
from childguard.store.hotline_models import ItemPlace
from hotline.hotline_site import Site, jpeg_bytes, settings_for
from local_http import serving

BASELINE = {"age_band": "prepubescent", "severity": "A", "generated": False}
INFANT_C = {"age_band": "infant-toddler", "severity": "C", "viral": True}
PUBESCENT_B = {"age_band": "pubescent", "severity": "B"}
HOME = "BE"


@pytest.fixture(autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """argon2id at a cost a test machine affords many times a second (import it, autouse)."""
    use_parameters(Parameters(Type.ID, 19, 16, 32, 1, 1024, 1))
    yield
    use_parameters(None)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """A store on SQLite only, for behaviour that does not depend on the database."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        yield store
    finally:
        store.close()


def analysts(store: Store, n: int = 2) -> list[int]:
    return [
        create_user(
            store,
            f"analyst-{secrets.token_hex(4)}",
            "a long test password",
            actor="test",
            roles=["analyst"],
        ).id
        for _ in range(n)
    ]


@dataclass
class Reported:
    """Items brought in by one report, decided by two analysts."""

    report_id: int
    item_ids: list[int]
    analysts: list[int]
    settings: ProcessingSettings
    urls: list[str]


def report_and_assess(
    store: Store,
    site: Site,
    evidence_dir: Path,
    seeds: list[int],
    facts: list[dict[str, Any]],
    *,
    settings: ProcessingSettings | None = None,
) -> Reported:
    """Serve one image per seed on a page, report the page, process it, and have two analysts
    agree on `facts[i]` for image i."""
    paths = [f"/media/photo-{seed}.jpg" for seed in seeds]
    for path, seed in zip(paths, seeds, strict=True):
        site.image(path, jpeg_bytes(seed))
    site.page(f"/gallery-{seeds[0]}.html", *paths)
    page = site.url(f"/gallery-{seeds[0]}.html")
    report = create_report(store, [page], channel="api", reporter="key:99", enqueue=False)
    settings = settings or settings_for(evidence_dir)
    processing.process_report(store, report.id, settings)
    with store.session() as s:
        places = s.query(ItemPlace).filter(ItemPlace.report_id == report.id).all()
        by_url = {p.url: p.item_id for p in places}
    item_ids = [by_url[site.url(path)] for path in paths]
    voters = analysts(store, 2)
    for item_id, item_facts in zip(item_ids, facts, strict=True):
        for voter in voters:
            record_vote(store, item_id, voter, item_facts)
    return Reported(report.id, item_ids, voters, settings, [site.url(p) for p in paths])


def police(store: Store, **kw: Any) -> int:
    values: dict[str, Any] = {
        "name": f"Police {secrets.token_hex(3)}",
        "kind": "police",
        "channel": "download",
        "country": HOME,
        "vics_profile": "uk",
        "actor": "user:1",
    }
    values.update(kw)
    return create_destination(store, **values).id


def partner_hotline(store: Store, country: str = "NL", **kw: Any) -> int:
    values: dict[str, Any] = {
        "name": f"Hotline {secrets.token_hex(3)}",
        "kind": "hotline",
        "channel": "download",
        "country": country,
        "vics_profile": "us",
        "actor": "user:1",
    }
    values.update(kw)
    return create_destination(store, **values).id


def propose_and_confirm(
    store: Store, item_ids: list[int], *, actor: str, now: datetime | None = None
) -> list[int]:
    """Propose routes for the decided items and confirm the routes of `item_ids`."""
    routing.propose_routes(store, default_home=HOME, now=now)
    ids = [r.id for i in item_ids for r in routing.list_routes(store, item_id=i)]
    routing.confirm(store, ids, actor=actor, check_after=timedelta(hours=6), now=now)
    return ids


# ------------------------------------------------------------------------------ receivers


@dataclass
class Inbox:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)

    def smtp(self) -> SmtpSettings:
        """Settings that send to this server."""
        return SmtpSettings(host=self.host, port=self.port, sender="hotline@childguard.test")


class _Collect(Message):
    def __init__(self, inbox: Inbox) -> None:
        super().__init__()
        self.inbox = inbox

    def handle_message(self, message: Any) -> None:
        self.inbox.messages.append(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    """A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps the messages it receives."""
    inbox = Inbox("127.0.0.1", free_port())
    controller = Controller(
        _Collect(inbox), hostname=inbox.host, port=inbox.port, data_size_limit=50 * 2**20
    )
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class Receiver:
    """A local HTTP receiver: records each POST, answers `status` with `answer` as JSON."""

    url: str = ""
    status: int = 200
    answer: dict[str, Any] | None = None
    # Hold each request open until `release` is set (a sender waiting on its answer).
    stall: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append((dict(self.headers.items()), body))
            if receiver.stall:
                receiver.release.wait(60)
            payload = json.dumps(receiver.answer).encode() if receiver.answer is not None else b""
            with contextlib.suppress(OSError):  # the sender may have given up waiting
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler, "/referrals") as receiver.url:
        yield receiver
