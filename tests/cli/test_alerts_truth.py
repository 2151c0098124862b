"""`protect alerts` tells the truth about delivery: an alert the webhook could not take is
reported as failed with its error (exit 1), later runs do not pay the retries again before the
next try is due, the schedule gives up after MAX_ATTEMPTS, and `org edit` queues the alerts
again for the corrected webhook."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from childguard.alerts.dispatch import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    AlertTransport,
    deliver,
    queue_sighting_alerts,
)
from childguard.alerts.webhook import RetryPolicy
from childguard.cli import EXIT_OK, EXIT_PARTIAL, app
from childguard.protect.organisations import create_organisation, get_organisation
from childguard.protect.register import photo_signals, register_photos
from childguard.store import open_store
from childguard.store.base import utcnow
from childguard.store.crawl_models import Sighting
from childguard.store.protect_models import Alert, ProtectedPhoto
from sample_media import jpeg_bytes


class Hook:
    """A real webhook receiver on 127.0.0.1 answering `status` and counting requests."""

    def __init__(self) -> None:
        self.status = 503
        self.hits = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.hits += 1
                self.send_response(hook.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook()
    yield h
    h.server.shutdown()
    h.server.server_close()


def _two_sightings(db: str, tmp_path: Path, webhook: str | None) -> None:
    album = tmp_path / "album"
    album.mkdir()
    (album / "camp.jpg").write_bytes(jpeg_bytes(5))
    now = utcnow()
    with open_store(db) as store, store.session() as s:
        org = create_organisation(s, "Scouts", webhook_url=webhook, webhook_secret="s3cret")
        register_photos(s, album, org, titles={"camp.jpg": "Campfire"})
        photo = s.scalar(select(ProtectedPhoto))
        assert photo is not None
        entry = next(e for role, e in photo_signals(s, photo) if role == "pdq")
        for n in (1, 2):
            s.add(
                Sighting(
                    site="share.example",
                    page_url=f"http://share.example/gallery/{n}",
                    image_url=f"http://share.example/img/{n}.jpg",
                    entry_id=entry.id,
                    match_key=f"entry:{entry.id}",
                    bank="protected:Scouts",
                    bank_kind="protected",
                    organisation="Scouts",
                    signal_type="pdq",
                    distance=4,
                    first_seen=now,
                    last_seen=now,
                    status_changed_at=now,
                )
            )


def test_a_failing_webhook_is_reported_and_not_retried_before_its_time(
    store_url: str, tmp_path: Path, hook: Hook
) -> None:
    _two_sightings(store_url, tmp_path, hook.url)
    res = CliRunner().invoke(app, ["protect", "alerts", "--db", store_url])
    assert res.exit_code == EXIT_PARTIAL, res.output
    assert "failed 1 (to be tried again)" in res.output and "held back 1" in res.output
    assert "HTTP 503" in res.output and "next try at" in res.output
    tried = hook.hits
    assert tried == AlertTransport().webhook_policy.attempts, res.output  # the other waits
    res = CliRunner().invoke(app, ["protect", "alerts", "--db", store_url])
    assert res.exit_code == EXIT_PARTIAL, res.output
    assert hook.hits == tried  # not due yet: no request at all
    assert "waits to be tried again" in res.output and "HTTP 503" in res.output
    hook.status = 200  # the receiver is fixed; `org edit` queues the alerts again
    res = CliRunner().invoke(
        app, ["org", "edit", "Scouts", "--webhook", hook.url + "?v=2", "--db", store_url]
    )
    assert res.exit_code == EXIT_OK and "queued again" in res.output, res.output
    res = CliRunner().invoke(app, ["protect", "alerts", "--db", store_url])
    assert res.exit_code == EXIT_OK, res.output
    assert "sent 2" in res.output


def test_the_retry_schedule_gives_up_with_the_last_error(
    store_url: str, tmp_path: Path, hook: Hook
) -> None:
    _two_sightings(store_url, tmp_path, hook.url)
    transport = AlertTransport(webhook_policy=RetryPolicy(attempts=1, base_delay_s=0))
    with open_store(store_url) as store, store.session() as s:
        queue_sighting_alerts(s)
        org = get_organisation(s, "Scouts")
        start = utcnow()
        first = deliver(s, transport, now=start, organisations=[org])
        assert len(first.retrying) == 1 and first.held == 1 and hook.hits == 1
        soon = deliver(s, transport, now=start + timedelta(minutes=4), organisations=[org])
        assert soon.held == 2 and hook.hits == 1  # the first retry is due after 5 minutes
        assert [at for _, _, at in soon.retry_later] == [first.retrying[0][2]]
        # A day apart, every retry is due (the longest wait is a day) ...
        reports = [
            deliver(s, transport, now=start + timedelta(days=1 + n), organisations=[org])
            for n in range(20)
        ]
        # ... but a retry is spaced from the failure, not caught up from the alert's creation.
        again = start + timedelta(days=30)
        one = deliver(s, transport, now=again, organisations=[org])
        assert one.sent == [] and one.failed == [] and not one.retrying
        alerts = s.scalars(select(Alert).order_by(Alert.id)).all()
    assert [a.status for a in alerts] == ["failed", "failed"]
    assert [a.attempts for a in alerts] == [MAX_ATTEMPTS, MAX_ATTEMPTS]
    assert all("HTTP 503" in (a.last_error or "") for a in alerts)
    gave_up = [i for r in reports for i, _ in r.failed]
    assert gave_up == [a.id for a in alerts]
    assert hook.hits == 2 * MAX_ATTEMPTS
    assert len(RETRY_DELAYS) + 1 == MAX_ATTEMPTS


def test_alerts_of_an_organisation_without_contacts_are_named(
    store_url: str, tmp_path: Path
) -> None:
    _two_sightings(store_url, tmp_path, None)
    res = CliRunner().invoke(app, ["protect", "alerts", "--db", store_url])
    assert res.exit_code == EXIT_OK, res.output
    assert "held back 2" in res.output
    assert "2 alert(s) of Scouts held: it has no email or webhook" in res.output


def test_a_retry_waits_its_delay_after_the_failure_not_after_the_alerts_creation(
    store_url: str, tmp_path: Path, hook: Hook
) -> None:
    """An alert that first failed long after it was made still waits 5 minutes: the schedule
    runs from each failure (`next_attempt_at`), so a run after a long gap does not fire every
    overdue try at once."""
    _two_sightings(store_url, tmp_path, hook.url)
    transport = AlertTransport(webhook_policy=RetryPolicy(attempts=1, base_delay_s=0))
    with open_store(store_url) as store, store.session() as s:
        queue_sighting_alerts(s)
        org = get_organisation(s, "Scouts")
        late = utcnow() + timedelta(days=3)  # the first try, three days after the alert
        first = deliver(s, transport, now=late, organisations=[org])
        (failed_id, _, next_try) = first.retrying[0]
        assert next_try == late + timedelta(minutes=5)
        early = deliver(s, transport, now=late + timedelta(minutes=4), organisations=[org])
        assert early.retrying == [] and hook.hits == 1
        due = deliver(s, transport, now=late + timedelta(minutes=6), organisations=[org])
        assert [i for i, _, _ in due.retrying] == [failed_id] and hook.hits == 2
        assert due.retrying[0][2] == late + timedelta(minutes=6) + timedelta(minutes=15)
