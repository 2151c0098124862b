"""Referrals: nothing leaves before an analyst's confirmation; sending by email (a real SMTP
server), webhook and api (a real HTTP receiver), recorded before and after; a failed send; a
send interrupted by a killed process becomes uncertain and is never sent again by itself."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from childguard.alerts.email import SmtpSettings
from childguard.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from childguard.hotline import routing
from childguard.hotline.bundles import BundleError
from childguard.hotline.referrals import (
    InvalidReferral,
    ReferralInfo,
    ReferralSendFailed,
    ReferralStateError,
    ReferralTransport,
    acknowledge,
    build_referral,
    destination_secret,
    get_referral,
    list_referrals,
    open_bundle,
    referrals_for_route,
    send_referral,
    settle_stale,
)
from childguard.store import open_store
from childguard.store.db import Store
from childguard.store.models import AuditEvent
from childguard.store.referral_models import Referral
from hotline.hotline_site import serving
from hotline.referral_fixtures import (
    BASELINE,
    HOME,
    PUBESCENT_B,
    Reported,
    cheap_password_hashes,
    http_receiver,
    partner_hotline,
    police,
    propose_and_confirm,
    report_and_assess,
    smtp_inbox,
    sqlite_store,
)

__all__ = ["cheap_password_hashes", "sqlite_store"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = b"x" * 32


def _transport(smtp: SmtpSettings | None = None, timeout_s: float = 10.0) -> ReferralTransport:
    return ReferralTransport(
        smtp=smtp, secret_for=lambda d: destination_secret(SECRET, d), timeout_s=timeout_s
    )


def _build(
    store: Store, reported: Reported, route_ids: list[int], destination: int, tmp: Path
) -> ReferralInfo:
    return build_referral(
        store,
        route_ids,
        destination_id=destination,
        actor="user:7",
        bundles_dir=tmp / "bundles",
        evidence_key=reported.settings.evidence_key,
        notifier_name="Test Hotline",
        now=NOW,
    )


def _reported(store: Store, tmp_path: Path) -> Reported:
    with serving() as site:
        return report_and_assess(
            store, site, tmp_path / "evidence", [51, 52], [BASELINE, PUBESCENT_B]
        )


@pytest.fixture
def reported(store: Store, tmp_path: Path) -> Reported:
    """Two items reported and assessed, on SQLite and PostgreSQL."""
    return _reported(store, tmp_path)


@pytest.fixture
def reported_sqlite(sqlite_store: Store, tmp_path: Path) -> Reported:
    """The same on SQLite only, for the channels (their behaviour is not the database's)."""
    return _reported(sqlite_store, tmp_path)


def test_nothing_leaves_before_an_analyst_confirms(
    store: Store, reported: Reported, tmp_path: Path
) -> None:
    destination = police(store)
    routing.propose_routes(store, default_home=HOME, now=NOW)
    routes = [r.id for i in reported.item_ids for r in routing.list_routes(store, item_id=i)]
    assert len(routes) == 2
    with pytest.raises(routing.RouteNotConfirmed):
        _build(store, reported, routes, destination, tmp_path)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Referral)) == 0
    assert not (tmp_path / "bundles").exists()
    routing.confirm(store, routes[:1], actor="user:7", check_after=timedelta(hours=6), now=NOW)
    with pytest.raises(routing.RouteNotConfirmed):  # one unconfirmed route stops them all
        _build(store, reported, routes, destination, tmp_path)
    hotline = partner_hotline(store)
    with pytest.raises(InvalidReferral, match="police route"):
        _build(store, reported, routes[:1], hotline, tmp_path)
    with pytest.raises(routing.RouteNotFound):
        _build(store, reported, [routes[0], 999_999], destination, tmp_path)
    other_police = police(store)
    with pytest.raises(InvalidReferral, match="routed to"):  # the rules chose `destination`
        _build(store, reported, routes[:1], other_police, tmp_path)
    info = _build(store, reported, routes[:1], destination, tmp_path)
    assert info.route_ids == (routes[0],) and info.state == "built"
    assert routing.get_route(store, routes[0]).state == "assessed"  # built is not sent


def test_an_email_referral_carries_the_bundle_and_moves_its_routes(
    store: Store, reported: Reported, tmp_path: Path
) -> None:
    destination = police(store, channel="email", address="unit@police.test")
    route_ids = propose_and_confirm(store, reported.item_ids, actor="user:7", now=NOW)
    info = _build(store, reported, route_ids, destination, tmp_path)
    with smtp_inbox() as inbox:
        with pytest.raises(ReferralSendFailed, match="SMTP"):
            send_referral(store, info.id, actor="user:8", transport=_transport(), now=NOW)
        assert get_referral(store, info.id).state == "failed"
        assert [r.state for r in routing.list_routes(store, ids=route_ids)] == ["assessed"] * 2
        smtp = SmtpSettings(host=inbox.host, port=inbox.port, sender="hotline@test")
        sent = send_referral(store, info.id, actor="user:8", transport=_transport(smtp), now=NOW)
    assert sent.state == "sent" and sent.sent_at == NOW and sent.sent_by == "user:8"
    assert sent.send_started_at == NOW and sent.last_error is None
    (message,) = inbox.messages
    assert message["To"] == "unit@police.test" and info.reference in message["Subject"]
    (attachment,) = [p for p in message.walk() if p.get_filename()]
    data = attachment.get_payload(decode=True)
    assert attachment.get_filename() == f"{info.reference}.zip"
    assert hashlib.sha256(data).hexdigest() == info.bundle_sha256
    routes = routing.list_routes(store, ids=route_ids)
    assert {(r.state, r.referral_id, r.referred_at) for r in routes} == {("referred", info.id, NOW)}
    with pytest.raises(ReferralStateError, match="not sent again"):
        send_referral(store, info.id, actor="user:8", transport=_transport(smtp))
    done = acknowledge(store, info.id, external_ref="PD-2026-17", actor="user:8", now=NOW)
    assert (done.state, done.external_ref, done.acknowledged_at) == (
        "acknowledged",
        "PD-2026-17",
        NOW,
    )
    assert acknowledge(store, info.id, external_ref="PD-2026-17", actor="user:8") == done
    with pytest.raises(ReferralStateError):
        acknowledge(store, info.id, external_ref="other", actor="user:8")
    with store.session() as s:
        actions = s.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.object_type == "referral", AuditEvent.object_id == str(info.id))
            .order_by(AuditEvent.id)
        ).all()
    assert actions == [
        "referral.build",
        "referral.sending",
        "referral.failed",
        "referral.sending",
        "referral.sent",
        "referral.acknowledge",
    ]
    assert [r.id for r in list_referrals(store, state="acknowledged")] == [info.id]
    assert list_referrals(store, state="built") == []


def test_a_webhook_referral_is_signed_and_its_answer_kept(
    sqlite_store: Store, reported_sqlite: Reported, tmp_path: Path
) -> None:
    store, reported = sqlite_store, reported_sqlite
    with http_receiver() as receiver:
        receiver.answer = {"reference": "NL-4711"}
        hotline = partner_hotline(store, channel="webhook", address=receiver.url)
        routing.propose_routes(store, default_home=HOME, now=NOW)
        route_ids = [r.id for i in reported.item_ids for r in routing.list_routes(store, item_id=i)]
        for route_id in route_ids:
            routing.override(
                store,
                route_id,
                route="hotline",
                reason="hosted in NL",
                actor="user:7",
                destination_id=hotline,
            )
        routing.confirm(store, route_ids, actor="user:7", check_after=timedelta(hours=6), now=NOW)
        info = _build(store, reported, route_ids, hotline, tmp_path)
        sent = send_referral(store, info.id, actor="user:8", transport=_transport(), now=NOW)
    ((headers, body),) = receiver.requests
    secret = destination_secret(SECRET, hotline)
    assert verify_signature(secret, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    assert not verify_signature("wrong", body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert (
        payload["reference"] == info.reference
        and payload["manifest_sha256"] == info.manifest_sha256
    )
    zipped = base64.b64decode(payload["bundle_base64"])
    assert hashlib.sha256(zipped).hexdigest() == info.bundle_sha256
    assert (sent.state, sent.external_ref) == ("sent", "NL-4711")
    routes = routing.list_routes(store, ids=route_ids)
    assert {(r.state, r.forwarded_at) for r in routes} == {("forwarded", NOW)}


def test_an_api_referral_is_acknowledged_by_the_answer_and_a_refusal_fails_it(
    sqlite_store: Store, reported_sqlite: Reported, tmp_path: Path
) -> None:
    store, reported = sqlite_store, reported_sqlite
    with http_receiver() as receiver:
        destination = police(store, channel="api", address=receiver.url)
        route_ids = propose_and_confirm(store, reported.item_ids, actor="user:7", now=NOW)
        info = _build(store, reported, route_ids, destination, tmp_path)
        receiver.status = 422
        with pytest.raises(ReferralSendFailed, match="HTTP 422") as failed:
            send_referral(store, info.id, actor="user:8", transport=_transport(), now=NOW)
        assert failed.value.referral.state == "failed"
        assert "HTTP 422" in (failed.value.referral.last_error or "")
        receiver.status, receiver.answer = 201, {"id": 88}
        later = NOW + timedelta(minutes=5)
        sent = send_referral(store, info.id, actor="user:8", transport=_transport(), now=later)
    headers, body = receiver.requests[-1]
    assert headers["Content-Type"] == "application/zip"
    assert hashlib.sha256(body).hexdigest() == info.bundle_sha256
    assert headers["X-Childguard-Reference"] == info.reference
    assert (sent.state, sent.external_ref, sent.acknowledged_at) == ("acknowledged", "88", later)
    assert {r.state for r in routing.list_routes(store, ids=route_ids)} == {"referred"}


def test_a_download_is_handed_over_only_after_it_was_downloaded(
    sqlite_store: Store, reported_sqlite: Reported, tmp_path: Path
) -> None:
    store, reported = sqlite_store, reported_sqlite
    destination = police(store)  # channel download
    route_ids = propose_and_confirm(store, reported.item_ids, actor="user:7", now=NOW)
    info = _build(store, reported, route_ids, destination, tmp_path)
    with pytest.raises(ReferralStateError, match="download the bundle"):
        send_referral(store, info.id, actor="user:8", transport=_transport(), now=NOW)
    opened, path = open_bundle(store, info.id, actor="user:8")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == opened.bundle_sha256
    handed = send_referral(store, info.id, actor="user:8", transport=_transport(), now=NOW)
    assert handed.state == "sent" and handed.channel == "download"
    # A bundle changed on disk is never handed out.
    Path(info.bundle_path).write_bytes(b"changed")
    with pytest.raises(BundleError, match="does not match"):
        open_bundle(store, info.id, actor="user:8")


def test_a_referrals_routes_are_its_own_rows_and_a_routes_referrals_come_newest_first(
    sqlite_store: Store, reported_sqlite: Reported, tmp_path: Path
) -> None:
    store, reported = sqlite_store, reported_sqlite
    destination = police(store)
    first, second = propose_and_confirm(store, reported.item_ids, actor="user:7", now=NOW)
    older = _build(store, reported, [first], destination, tmp_path)
    newer = _build(store, reported, [second, first], destination, tmp_path)
    assert newer.route_ids == tuple(sorted([first, second]))
    # The audit log records who built them; the relation lives in its own table.
    with store.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.action == "referral.build"))
    assert get_referral(store, newer.id).route_ids == tuple(sorted([first, second]))
    assert [r.id for r in referrals_for_route(store, first)] == [newer.id, older.id]
    assert [r.id for r in referrals_for_route(store, second)] == [newer.id]
    listed = {r.id: r.route_ids for r in list_referrals(store)}
    assert listed == {older.id: (first,), newer.id: tuple(sorted([first, second]))}
    open_bundle(store, newer.id, actor="user:8")  # downloaded, then handed over
    sent = send_referral(store, newer.id, actor="user:8", transport=_transport(), now=NOW)
    assert sent.state == "sent"
    assert {r.referral_id for r in routing.list_routes(store, ids=[first, second])} == {newer.id}


_SENDER = """
import sys
from childguard.hotline.referrals import ReferralTransport, destination_secret, send_referral
from childguard.store import open_store
store = open_store(sys.argv[1])
secret = bytes.fromhex(sys.argv[3])
send_referral(store, int(sys.argv[2]), actor="user:8",
              transport=ReferralTransport(secret_for=lambda d: destination_secret(secret, d),
                                          timeout_s=60))
"""


def test_a_send_cut_off_by_a_killed_process_is_uncertain_and_never_resent(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    try:
        with serving() as site:
            reported = report_and_assess(store, site, tmp_path / "evidence", [53], [BASELINE])
        with http_receiver() as receiver:
            destination = police(store, channel="api", address=receiver.url)
            route_ids = propose_and_confirm(store, reported.item_ids, actor="user:7")
            info = _build(store, reported, route_ids, destination, tmp_path)
            receiver.stall = True
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
            child = subprocess.Popen(
                [sys.executable, "-c", _SENDER, url, str(info.id), SECRET.hex()], env=env
            )
            deadline = time.monotonic() + 30
            while get_referral(store, info.id).state != "sending":
                assert child.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            while not receiver.requests:  # it reached the receiver: it may have gone out
                assert time.monotonic() < deadline
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            assert get_referral(store, info.id).state == "sending"
            started = get_referral(store, info.id).send_started_at
            assert started is not None
            assert settle_stale(store, now=started + timedelta(seconds=30)) == []
            assert settle_stale(store, now=started + timedelta(seconds=61)) == [info.id]
            stuck = get_referral(store, info.id)
            assert stuck.state == "uncertain" and "interrupted" in (stuck.last_error or "")
            with pytest.raises(ReferralStateError, match="uncertain"):
                send_referral(store, info.id, actor="user:8", transport=_transport())
            assert len(receiver.requests) == 1  # never sent again by itself
            receiver.release.set()
        assert {r.state for r in routing.list_routes(store, ids=route_ids)} == {"assessed"}
        done = acknowledge(store, info.id, external_ref="PD-9", actor="user:8")
        assert done.state == "acknowledged" and done.sent_at == started
        routes = routing.list_routes(store, ids=route_ids)
        assert {(r.state, r.referral_id) for r in routes} == {("referred", info.id)}
    finally:
        store.close()


def test_a_request_that_gets_no_answer_is_uncertain_until_resent_on_purpose(
    sqlite_store: Store, reported_sqlite: Reported, tmp_path: Path
) -> None:
    store, reported = sqlite_store, reported_sqlite
    with http_receiver() as receiver:
        destination = police(store, channel="api", address=receiver.url)
        route_ids = propose_and_confirm(store, reported.item_ids, actor="user:7", now=NOW)
        info = _build(store, reported, route_ids, destination, tmp_path)
        receiver.stall = True
        with pytest.raises(ReferralSendFailed, match="may not have been sent"):
            send_referral(store, info.id, actor="user:8", transport=_transport(timeout_s=0.5))
        receiver.release.set()
        assert get_referral(store, info.id).state == "uncertain"
        with pytest.raises(ReferralStateError, match="uncertain"):
            send_referral(store, info.id, actor="user:8", transport=_transport())
        assert len(receiver.requests) == 1
        receiver.stall, receiver.answer = False, {"reference": "PD-3"}
        sent = send_referral(
            store, info.id, actor="user:8", transport=_transport(), resend_uncertain=True
        )
    assert (sent.state, sent.external_ref) == ("acknowledged", "PD-3")
    assert len(receiver.requests) == 2
