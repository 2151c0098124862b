"""One alert per new sighting (never per re-check), immediate and daily-digest delivery over a
real SMTP server and a real webhook receiver, and no image bytes in any alert."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alert_servers import SmtpInbox, WebhookReceiver
from sqlalchemy import func, select, text

from childguard.alerts.dispatch import AlertTransport, deliver, queue_sighting_alerts
from childguard.alerts.email import SmtpSettings
from childguard.alerts.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    verify_signature,
)
from childguard.protect.albums import queue_view_spike_alerts
from childguard.protect.organisations import create_organisation, get_organisation
from childguard.protect.register import photo_signals, register_photos
from childguard.protect.viewspike import detect_spikes
from childguard.store import Store
from childguard.store.crawl_models import Sighting
from childguard.store.protect_models import Alert

T0 = datetime(2024, 7, 1, 9, tzinfo=UTC)
FAST = RetryPolicy(attempts=4, base_delay_s=0.01, timeout_s=2)


def _photo(path: Path, seed: int) -> Path:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).resize((256, 256), Image.Resampling.BICUBIC).save(path)
    return path


def _setup(store: Store, tmp_path: Path, hook: WebhookReceiver, mode: str = "immediate") -> int:
    album = tmp_path / "album"
    album.mkdir()
    _photo(album / "camp.png", 1)
    with store.session() as s:
        org = create_organisation(
            s,
            "Scouts",
            emails=["leader@scouts.example"],
            webhook_url=hook.url,
            webhook_secret="topsecret",
            alert_mode=mode,
        )
        register_photos(s, album, org, titles={"camp.png": "Campfire"})
        return org.id


def _sighting(store: Store, n: int, at: datetime, role: str = "pdq") -> int:
    with store.session() as s:
        org = get_organisation(s, "Scouts")
        photo_entry = next(e for r, e in photo_signals(s, _first_photo(s, org.id)) if r == role)
        row = Sighting(
            site="share.example",
            page_url=f"http://share.example/gallery/{n}",
            page_title=f"Gallery {n}",
            image_url=f"http://share.example/img/{n}.jpg",
            entry_id=photo_entry.id,
            match_key=f"entry:{photo_entry.id}",
            bank="protected:Scouts",
            bank_kind="protected",
            organisation="Scouts",
            signal_type="pdq",
            distance=6,
            first_seen=at,
            last_seen=at,
            status_changed_at=at,
        )
        s.add(row)
        s.flush()
        return row.id


def _first_photo(s, org_id):  # type: ignore[no-untyped-def]
    from childguard.store.protect_models import ProtectedPhoto

    return s.scalar(select(ProtectedPhoto).where(ProtectedPhoto.organisation_id == org_id))


def test_one_alert_per_new_sighting_delivered_by_email_and_webhook(
    store: Store, tmp_path: Path, smtp_server: SmtpInbox, webhook_receiver: WebhookReceiver
) -> None:
    _setup(store, tmp_path, webhook_receiver)
    first = _sighting(store, 1, T0)
    _sighting(store, 2, T0)
    webhook_receiver.fail_first = 2  # the first delivery is retried with backoff
    transport = AlertTransport(SmtpSettings(smtp_server.host, smtp_server.port), FAST)
    with store.session() as s:
        assert len(queue_sighting_alerts(s)) == 2
        assert queue_sighting_alerts(s) == []  # a second pass adds nothing
    with store.session() as s:  # a re-check of the same sighting
        row = s.get(Sighting, first)
        assert row is not None
        row.times_seen += 1
        row.last_seen = T0 + timedelta(hours=6)
    with store.session() as s:
        assert queue_sighting_alerts(s) == []
        report = deliver(s, transport)
    assert len(report.sent) == 2 and report.failed == []
    assert len(smtp_server.messages) == 2
    mail = smtp_server.messages[0]
    assert "Campfire" in mail["Subject"] and "share.example" in mail["Subject"]
    text = mail.get_payload()
    assert "http://share.example/gallery/1" in text and "http://share.example/img/1.jpg" in text
    ok = [(h, b) for h, b in webhook_receiver.requests][-2:]
    for headers, body in ok:
        assert verify_signature(
            "topsecret", body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
        )
    payload = json.loads(ok[0][1])
    assert payload["type"] == "sighting" and payload["sighting_id"] == first
    assert payload["first_seen"] == T0.isoformat()
    assert payload["match"]["title"] == "Campfire" and payload["match"]["distance"] == 6
    assert set(payload) == {
        "type",
        "organisation",
        "sighting_id",
        "site",
        "page_url",
        "page_title",
        "image_url",
        "first_seen",
        "status",
        "match",
    }
    # Delivering again sends nothing; the alerts are marked sent.
    with store.session() as s:
        again = deliver(s, transport)
        assert again.sent == []
        assert s.scalar(select(func.count()).where(Alert.status == "sent")) == 2
    assert len(smtp_server.messages) == 2


def test_one_image_matched_by_two_entries_of_a_photo_is_one_alert(
    store: Store, tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    _setup(store, tmp_path, webhook_receiver)
    with store.session() as s:
        roles = {r for r, _ in photo_signals(s, _first_photo(s, get_organisation(s, "Scouts").id))}
    region = sorted(r for r in roles if r.startswith("region:"))[0]
    first = _sighting(store, 1, T0)
    _sighting(store, 1, T0, role=region)  # the same page and image, through a region view
    with store.session() as s:
        alerts = queue_sighting_alerts(s)
        assert [a.sighting_id for a in alerts] == [first]
    other = _sighting(store, 2, T0, role=region)  # another place is its own alert
    with store.session() as s:
        assert [a.sighting_id for a in queue_sighting_alerts(s)] == [other]


def test_daily_digest_batches_and_waits_a_day(
    store: Store, tmp_path: Path, smtp_server: SmtpInbox, webhook_receiver: WebhookReceiver
) -> None:
    _setup(store, tmp_path, webhook_receiver, mode="daily")
    for n in range(3):
        _sighting(store, n, T0)
    transport = AlertTransport(SmtpSettings(smtp_server.host, smtp_server.port), FAST)
    with store.session() as s:
        queue_sighting_alerts(s)
        report = deliver(s, transport, now=T0 + timedelta(hours=1))
    assert report.digests == 1 and len(report.sent) == 3
    assert len(smtp_server.messages) == 1 and "3 new alert" in smtp_server.messages[0]["Subject"]
    digest = webhook_receiver.payloads()[-1]
    assert digest["type"] == "digest" and len(digest["alerts"]) == 3
    _sighting(store, 10, T0 + timedelta(hours=2))
    with store.session() as s:
        queue_sighting_alerts(s)
        held = deliver(s, transport, now=T0 + timedelta(hours=5))
        assert held.sent == [] and held.waiting == 1
        later = deliver(s, transport, now=T0 + timedelta(hours=26))
        assert later.digests == 1 and len(later.sent) == 1
    assert len(smtp_server.messages) == 2


def test_a_digest_retry_sends_only_on_the_channel_that_failed(
    store: Store, tmp_path: Path, smtp_server: SmtpInbox, webhook_receiver: WebhookReceiver
) -> None:
    _setup(store, tmp_path, webhook_receiver, mode="daily")
    for n in range(2):
        _sighting(store, n, T0)
    transport = AlertTransport(
        SmtpSettings(smtp_server.host, smtp_server.port), RetryPolicy(2, 0.01)
    )
    webhook_receiver.fail_first = 2  # both tries of the first delivery fail
    with store.session() as s:
        queue_sighting_alerts(s)
        first = deliver(s, transport, now=T0 + timedelta(hours=1))
        assert first.sent == [] and first.waiting == 2 and first.digests == 0
        assert len(smtp_server.messages) == 1  # the email went out
    _sighting(store, 5, T0 + timedelta(hours=2))  # a new alert joins before the retry
    with store.session() as s:
        queue_sighting_alerts(s)
        retry = deliver(s, transport, now=T0 + timedelta(hours=3))
        assert retry.digests == 1 and len(retry.sent) == 3
        alerts = s.scalars(select(Alert).order_by(Alert.id)).all()
        assert [a.attempts for a in alerts] == [2, 2, 1]
        assert all(a.status == "sent" and a.webhook_sent_at is not None for a in alerts)
    # The email digest of the retry carries only the new alert; the webhook carries all three.
    assert len(smtp_server.messages) == 2 and "1 new alert" in smtp_server.messages[1]["Subject"]
    assert len(webhook_receiver.payloads()[-1]["alerts"]) == 3


def test_unreachable_channels_keep_alerts_pending_for_retry(
    store: Store, tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    _setup(store, tmp_path, webhook_receiver)
    _sighting(store, 1, T0)
    webhook_receiver.fail_first = 100
    transport = AlertTransport(SmtpSettings("127.0.0.1", 9, timeout_s=1), RetryPolicy(2, 0.01))
    with store.session() as s:
        queue_sighting_alerts(s)
        report = deliver(s, transport)
        assert report.sent == [] and report.waiting == 1
        alert = s.scalar(select(Alert))
        assert alert is not None and alert.status == "pending" and alert.attempts == 1
        assert alert.last_error and "webhook" in alert.last_error


def test_view_spike_alerts_carry_the_series_once(
    store: Store, tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    _setup(store, tmp_path, webhook_receiver)
    day = timedelta(days=1)
    album = {
        "a": [(T0, 100), (T0 + day, 150)],
        "b": [(T0, 100), (T0 + day, 160)],
        "camp": [(T0, 100), (T0 + day, 200_100)],
    }
    with store.session() as s:
        org = get_organisation(s, "Scouts")
        made = queue_view_spike_alerts(s, org, "http://own.example/album", detect_spikes(album))
        assert [a.payload["photo"] for a in made] == ["camp"]
        assert made[0].payload["series"][-1] == [(T0 + day).isoformat(), 200_100]
        assert (
            queue_view_spike_alerts(s, org, "http://own.example/album", detect_spikes(album)) == []
        )


def test_each_later_spike_of_a_long_photo_url_is_its_own_alert(
    store: Store, tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """A photo URL longer than the dedupe key used to be cut, losing the time in the key, so
    every spike after the first one was taken for a repeat and never alerted."""
    _setup(store, tmp_path, webhook_receiver)
    day = timedelta(days=1)
    camp = "https://cdn.own.example/photos/camp.jpg?sig=" + "7f" * 200
    album_url = "https://own.example/album?session=" + "ab" * 200
    quiet = {k: [(T0 + day * i, 100 + 50 * i) for i in range(4)] for k in ("a", "b", "c")}
    made = []
    with store.session() as s:
        org = get_organisation(s, "Scouts")
        for last in (1, 3):  # a spike seen on day 1, another on day 3
            series = [
                (T0 + day * i, 100 + (200_000 if i >= last else 0) * i) for i in range(last + 1)
            ]
            album = {k: v[: last + 1] for k, v in quiet.items()} | {camp: series}
            made += queue_view_spike_alerts(s, org, album_url, detect_spikes(album))
            assert queue_view_spike_alerts(s, org, album_url, detect_spikes(album)) == []
    spikes = [a for a in made if a.kind == "view-spike"]
    assert [a.payload["photo"] for a in spikes] == [camp, camp]
    assert len({a.dedupe_key for a in made}) == len(made)
    assert all(len(a.dedupe_key) <= 300 for a in made)


def test_two_writers_queueing_one_sighting_at_once_make_one_alert(
    store: Store, tmp_path: Path, webhook_receiver: WebhookReceiver
) -> None:
    """Two service workers queue the same new sighting at the same moment: the second waits on
    the first's uncommitted alert, then skips it, and neither fails."""
    if store.url.startswith("sqlite"):
        pytest.skip("SQLite lets one writer in at a time: the second never reads before it")
    _setup(store, tmp_path, webhook_receiver)
    sighting = _sighting(store, 1, T0)
    second: dict[str, object] = {}

    def other_worker() -> None:
        try:
            with store.session() as s:
                second["alerts"] = [a.sighting_id for a in queue_sighting_alerts(s)]
        except Exception as exc:  # reported to the test below
            second["error"] = exc

    with store.session() as first:
        assert [a.sighting_id for a in queue_sighting_alerts(first)] == [sighting]
        worker = threading.Thread(target=other_worker)
        worker.start()
        deadline = time.monotonic() + 30
        while not _someone_waits_on_a_lock(store):  # the second insert waits on the first's row
            assert worker.is_alive() and time.monotonic() < deadline, second
            time.sleep(0.05)
    worker.join(30)
    assert second == {"alerts": []}
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1


def _someone_waits_on_a_lock(store: Store) -> bool:
    with store.session() as s:
        waiting = s.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        )
    return bool(waiting)
