"""Notices to hosts: made from confirmed routes only, sent by email (a real SMTP server) and by
webhook (a real receiver) only after an analyst's confirmation, re-sent after the interval
with the clock injected, escalated, retried after a failure, and closed once every URL is
verified removed; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from childguard.alerts.subscriptions import (
    InvalidSubscription,
    create_subscription,
    deliver_due,
    derive_secret,
)
from childguard.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature
from childguard.hotline import destinations, host_links, notice_letters, notices, removal, routing
from childguard.hotline.notices import (
    InvalidNotice,
    NoticeNotDraft,
    NoticeTransport,
    create_notice,
    get_notice,
    notices_for_route,
    send_due,
    send_notice,
)
from childguard.protect.organisations import create_organisation
from childguard.store.db import Store
from childguard.store.hotline_models import Item
from childguard.store.models import AuditEvent
from childguard.store.referral_models import NoticeSend
from childguard.store.webhook_models import WebhookDelivery, WebhookSubscription
from hotline.hotline_site import serving
from hotline.notice_fixtures import (
    ABUSE_EMAIL,
    HARVESTED,
    LINK_KEY,
    T0,
    WEBHOOK_SECRET,
    Inbox,
    Receiver,
    body_of,
    free_port,
    inbox,
    notice_settings,
    receiver,
    removal_settings,
    routed,
    transport,
)

__all__ = ["inbox", "receiver"]
TOKEN = re.compile(r"/host/notice/([A-Za-z0-9_-]{43})")


def _actions(store: Store, notice_id: int) -> list[str]:
    with store.session() as s:
        return list(
            s.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.object_type == "notice", AuditEvent.object_id == str(notice_id))
                .order_by(AuditEvent.id)
            )
        )


def test_an_email_notice_goes_only_after_confirmation_and_again_after_the_interval(
    store: Store, inbox: Inbox
) -> None:
    settings = notice_settings()
    with serving() as site:
        route_ids = routed(store, site, 1)
        draft = create_notice(
            store, route_ids, recipient_kind="host", channel="email", actor="user:7", now=T0
        )
        assert draft.state == "draft" and draft.address == ABUSE_EMAIL
        assert draft.recipient_name == "Host Abuse Desk"
        assert draft.reference == f"CG-N-2026-{draft.id:06d}"
        assert draft.identity_withheld and "child sexual abuse material" in draft.reason
        # A draft never leaves, whatever the clock says.
        quiet = send_due(
            store, transport=transport(inbox), settings=settings, now=T0 + timedelta(days=9)
        )
        assert quiet.sent == [] and inbox.messages == []

        sent = send_notice(
            store, draft.id, actor="user:7", transport=transport(inbox), settings=settings, now=T0
        )
        assert sent.state == "open" and sent.sends == 1 and sent.confirmed_by == "user:7"
        assert sent.next_send_at == T0 + timedelta(hours=24)
        assert [s.state for s in sent.sendings] == ["sent"]
        assert len(inbox.messages) == 1
        first = inbox.messages[0]
        assert first["To"] == ABUSE_EMAIL and first["From"] == "notices@hotline.test"
        assert first["Reply-To"] == "notices@hotline.test"
        assert first["Message-ID"] == f"<{draft.reference}.1@childguard.notice>"
        body = body_of(first)
        route = routing.get_route(store, route_ids[0])
        with store.session() as s:
            item = s.get(Item, route.item_id)
            assert item is not None
            sha256, pdq = item.sha256, item.pdq
        for part in (
            route.url,
            f"SHA-256: {sha256}",
            f"PDQ: {pdq}",
            "Captured: ",
            draft.reference,
            notice_letters.GOOD_FAITH[:40],
            "Withheld: this notice concerns a child sexual abuse offence",
            "Please preserve the content",
            "http://hotline.test/host/notice/",
            "Article 16",
        ):
            assert part in body, part
        assert "Test Hotline" not in body  # the notifier's identity is withheld
        assert route.state == "notified" and route.notified_at == T0 and route.notice_id == draft.id

        with pytest.raises(NoticeNotDraft):
            send_notice(
                store, draft.id, actor="user:8", transport=transport(inbox), settings=settings
            )

        early = send_due(
            store, transport=transport(inbox), settings=settings, now=T0 + timedelta(hours=23)
        )
        assert early.sent == [] and len(inbox.messages) == 1
        later = T0 + timedelta(hours=24)
        again = send_due(store, transport=transport(inbox), settings=settings, now=later)
        assert again.sent == [draft.id] and len(inbox.messages) == 2
        second = inbox.messages[1]
        assert second["Message-ID"] == f"<{draft.reference}.2@childguard.notice>"
        assert "(notice 2: still online)" in " ".join(str(second["Subject"]).split())
        link = [line.strip() for line in body_of(second).splitlines() if "/host/" in line]
        assert link == [line.strip() for line in body.splitlines() if "/host/" in line]
        after = get_notice(store, draft.id)
        assert after.sends == 2 and after.last_sent_at == later and after.first_sent_at == T0
        assert [s.sequence for s in after.sendings] == [1, 2]
        kept = routing.get_route(store, route_ids[0])
        assert kept.notified_at == T0  # re-notices keep the first notice's time
    assert _actions(store, draft.id) == [
        "notice.create",
        "notice.confirm",
        "notice.link_issue",
        "notice.send",
        "notice.send",
    ]


def test_a_webhook_notice_is_signed_and_carries_the_same_fields(
    store: Store, receiver: Receiver
) -> None:
    settings = notice_settings()
    with serving() as site:
        route_ids = routed(store, site, 2)
        draft = create_notice(
            store,
            route_ids,
            recipient_kind="platform",
            channel="webhook",
            address=receiver.url,
            identity_withheld=False,
            actor="user:7",
            now=T0,
        )
        send_notice(
            store, draft.id, actor="user:7", transport=transport(), settings=settings, now=T0
        )
        send_due(
            store, transport=transport(), settings=settings, now=T0 + timedelta(hours=24, seconds=1)
        )
    assert len(receiver.requests) == 2
    headers, raw = receiver.requests[0]
    assert headers["idempotency-key"] == f"{draft.reference}-1"
    assert receiver.requests[1][0]["idempotency-key"] == f"{draft.reference}-2"
    assert verify_signature(
        WEBHOOK_SECRET,
        raw,
        headers["x-childguard-timestamp"],
        headers["x-childguard-signature"],
    )
    payload = receiver.payloads()[0]
    assert payload["reference"] == draft.reference and payload["sequence"] == 1
    assert payload["urls"][0]["url"] == routing.get_route(store, route_ids[0]).url
    assert len(payload["urls"][0]["sha256"]) == 64 and len(payload["urls"][0]["pdq"]) == 64
    assert payload["notifier"] == {"name": "Test Hotline", "email": "notices@hotline.test"}
    assert payload["good_faith"] == notice_letters.GOOD_FAITH
    assert payload["preservation_request"] and payload["host_link"].startswith(
        "http://hotline.test/host/notice/"
    )
    assert receiver.payloads()[1]["sequence"] == 2


def test_a_platforms_webhook_notices_are_signed_with_its_secret_and_others_with_theirs(
    store: Store, receiver: Receiver
) -> None:
    key = b"s" * 32
    platform = destinations.create_destination(
        store,
        name="Photo platform",
        kind="platform",
        channel="webhook",
        address=receiver.url,
        hosts=["photos.example"],
        actor="t",
    )
    elsewhere = receiver.url + "?elsewhere"
    signer = NoticeTransport(webhook_secret=lambda a: notices.signing_secret(store, key, a))
    with serving() as site:
        for seed, address in ((11, receiver.url), (12, elsewhere)):
            draft = create_notice(
                store,
                routed(store, site, seed),
                recipient_kind="host",
                channel="webhook",
                address=address,
                actor="u",
                now=T0,
            )
            send_notice(
                store, draft.id, actor="u", transport=signer, settings=notice_settings(), now=T0
            )
    platform_secret, owner = notices.reveal_webhook_secret(store, key, receiver.url, actor="user:9")
    assert owner is not None and owner.id == platform.id
    assert platform_secret == destinations.destination_secret(key, platform.id)
    assert destinations.reveal_secret(store, key, platform.id, actor="user:9")[1] == (
        platform_secret
    )
    address_secret, nobody = notices.reveal_webhook_secret(store, key, elsewhere, actor="user:9")
    assert nobody is None and address_secret == notices.webhook_secret(key, elsewhere)
    assert address_secret != platform_secret

    def signed_by(secret: str, request: tuple[dict[str, str], bytes]) -> bool:
        headers, body = request
        return verify_signature(
            secret, body, headers[TIMESTAMP_HEADER.lower()], headers[SIGNATURE_HEADER.lower()]
        )

    to_platform, to_elsewhere = receiver.requests
    assert signed_by(platform_secret, to_platform) and not signed_by(address_secret, to_platform)
    assert signed_by(address_secret, to_elsewhere)
    with pytest.raises(InvalidNotice):
        notices.reveal_webhook_secret(store, key, "not a url", actor="user:9")
    with store.session() as s:
        reveals = s.execute(
            select(AuditEvent.action, AuditEvent.object_id, AuditEvent.details)
            .where(AuditEvent.actor == "user:9")
            .order_by(AuditEvent.id)
        ).all()
    assert [(a, o) for a, o, _ in reveals] == [
        ("destination.secret_reveal", str(platform.id)),
        ("destination.secret_reveal", str(platform.id)),
        ("notice.webhook_secret_reveal", hashlib.sha256(elsewhere.encode()).hexdigest()),
    ]
    assert reveals[2][2] == {"address": elsewhere}


def test_notices_refuse_routes_an_analyst_did_not_confirm_and_bad_addresses(store: Store) -> None:
    with serving() as site:
        unconfirmed = routed(store, site, 3, confirm=False)
        with pytest.raises(routing.RouteNotConfirmed):
            create_notice(store, unconfirmed, recipient_kind="host", channel="email", actor="u")
        no_contact = routed(store, site, 4, abuse=None)
        with pytest.raises(InvalidNotice, match="no email address is known"):
            create_notice(store, no_contact, recipient_kind="host", channel="email", actor="u")
        with pytest.raises(InvalidNotice, match="not an email address"):
            create_notice(
                store,
                no_contact,
                recipient_kind="host",
                channel="email",
                address="nobody",
                actor="u",
            )
        with pytest.raises(InvalidNotice, match="recipient_kind"):
            create_notice(store, no_contact, recipient_kind="police", channel="email", actor="u")
        with pytest.raises(InvalidNotice, match="at least one route"):
            create_notice(store, [], recipient_kind="host", channel="email", actor="u")


def test_a_notices_routes_are_its_own_rows_and_a_routes_notices_come_newest_first(
    store: Store,
) -> None:
    with serving() as site:
        (first_route,) = routed(store, site, 8)
        (second_route,) = routed(store, site, 9)
        older = create_notice(
            store, [first_route], recipient_kind="host", channel="email", actor="u"
        )
        newer = create_notice(
            store,
            [second_route, first_route],
            recipient_kind="host",
            channel="email",
            actor="u",
        )
    assert newer.route_ids == sorted([first_route, second_route])
    # The audit log records who made them; the relation lives in its own table.
    with store.session() as s:
        s.execute(delete(AuditEvent).where(AuditEvent.action == "notice.create"))
    assert get_notice(store, newer.id).route_ids == sorted([first_route, second_route])
    assert [n.id for n in notices_for_route(store, first_route)] == [newer.id, older.id]
    assert [n.id for n in notices_for_route(store, second_route)] == [newer.id]
    assert notices_for_route(store, 999_999) == []


def test_a_harvested_photo_names_the_notifier_and_its_terms_of_service_reason(
    store: Store, inbox: Inbox
) -> None:
    with serving() as site:
        route_ids = routed(store, site, 5, facts=HARVESTED)
        draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
        assert not draft.identity_withheld and "terms of service" in draft.reason
        send_notice(
            store, draft.id, actor="u", transport=transport(inbox), settings=notice_settings()
        )
    body = body_of(inbox.messages[0])
    assert "Test Hotline <notices@hotline.test>" in body and "Withheld" not in body


def test_a_failed_sending_is_retried_with_the_same_sequence_and_escalation_follows(
    store: Store, inbox: Inbox
) -> None:
    settings = notice_settings(escalate_after=2)
    nowhere = transport(inbox)
    nowhere.smtp = inbox.smtp().__class__(host="127.0.0.1", port=free_port(), timeout_s=2)
    with serving() as site:
        route_ids = routed(store, site, 6)
        draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
        failed = send_notice(
            store, draft.id, actor="u", transport=nowhere, settings=settings, now=T0
        )
        assert failed.sends == 0 and failed.sendings[0].state == "failed"
        assert failed.sendings[0].error and "cannot send email" in failed.sendings[0].error
        assert routing.get_route(store, route_ids[0]).state == "assessed"  # nothing went out
        assert failed.next_send_at == T0 + notices.RETRY_FAILED_AFTER

        retry_at = T0 + notices.RETRY_FAILED_AFTER
        retried = send_due(store, transport=transport(inbox), settings=settings, now=retry_at)
        assert retried.sent == [draft.id]
        assert inbox.messages[0]["Message-ID"] == f"<{draft.reference}.1@childguard.notice>"
        with store.session() as s:
            rows = s.scalars(select(NoticeSend).where(NoticeSend.notice_id == draft.id)).all()
            assert [(r.sequence, r.state) for r in rows] == [(1, "sent")]

        day = timedelta(hours=24)
        mail = transport(inbox)
        send_due(store, transport=mail, settings=settings, now=retry_at + day)
        assert get_notice(store, draft.id).escalated_at is None  # two sent, not yet unanswered
        third = send_due(
            store, transport=transport(inbox), settings=settings, now=retry_at + 2 * day
        )
        assert third.escalated == [draft.id] and third.sent == [draft.id]
        notice = get_notice(store, draft.id)
        assert notice.escalated_at == retry_at + 2 * day and notice.sends == 3
        assert len(inbox.messages) == 3
        fourth = send_due(
            store, transport=transport(inbox), settings=settings, now=retry_at + 3 * day
        )
        assert fourth.escalated == [] and fourth.sent == [draft.id]  # escalated once
    assert "notice.escalate" in _actions(store, draft.id)
    assert _actions(store, draft.id).count("notice.send_failed") == 1


def test_an_escalation_reaches_the_hotlines_own_subscriptions_and_no_organisations(
    store: Store, inbox: Inbox, receiver: Receiver
) -> None:
    key = b"k" * 32
    with store.session() as s:
        organisation = create_organisation(s, "Photo Agency").id
    hotline = create_subscription(
        store, receiver.url, actor="t", events=[notices.ESCALATED_EVENT], banks=["ALPHA"]
    )
    create_subscription(store, receiver.url, actor="t")  # match events only
    with pytest.raises(InvalidSubscription, match="hotline events"):
        create_subscription(
            store,
            receiver.url,
            actor="t",
            events=["match", notices.ESCALATED_EVENT],
            organisation_id=organisation,
        )
    theirs = create_subscription(store, receiver.url, actor="t", organisation_id=organisation)
    with store.session() as s:  # even a row that asks for it is never sent a hotline event
        s.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == theirs.id)
            .values(events=["match", notices.ESCALATED_EVENT])
        )
    settings = notice_settings(escalate_after=1)
    with serving() as site:
        route_ids = routed(store, site, 10)
        draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
        send_notice(
            store, draft.id, actor="u", transport=transport(inbox), settings=settings, now=T0
        )
        later = T0 + timedelta(hours=24)
        again = send_due(store, transport=transport(inbox), settings=settings, now=later)
    assert again.escalated == [draft.id]
    with store.session() as s:
        queued = s.execute(select(WebhookDelivery.subscription_id, WebhookDelivery.event_type))
        assert list(queued) == [(hotline.id, notices.ESCALATED_EVENT)]
    sent = deliver_due(store, lambda i: derive_secret(key, i))
    assert len(sent.sent) == 1 and len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert verify_signature(
        derive_secret(key, hotline.id),
        body,
        headers[TIMESTAMP_HEADER.lower()],
        headers[SIGNATURE_HEADER.lower()],
    )
    (event,) = receiver.payloads()
    assert event["event"] == notices.ESCALATED_EVENT
    assert event["id"] == f"notice-escalated:{draft.id}"
    assert event["at"] == later.isoformat()
    assert event["notice"] == {
        "id": draft.id,
        "reference": draft.reference,
        "recipient_kind": "host",
        "recipient_name": "Host Abuse Desk",
        "sends": 1,
        "first_sent_at": T0.isoformat(),
        "escalated_at": later.isoformat(),
    }
    for not_in_the_event in (ABUSE_EMAIL, routing.get_route(store, route_ids[0]).url):
        assert not_in_the_event not in body.decode()


def test_notices_stop_while_the_content_is_down_and_close_once_removal_is_verified(
    store: Store, inbox: Inbox
) -> None:
    settings = notice_settings()
    checks = removal_settings()
    with serving() as site:
        route_ids = routed(store, site, 7, path="/gone.jpg")
        draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
        send_notice(
            store, draft.id, actor="u", transport=transport(inbox), settings=settings, now=T0
        )
        del site.routes["/gone.jpg"]  # the host takes it down
        hour = timedelta(hours=1)
        removed = removal.check_route(store, route_ids[0], now=T0 + hour, settings=checks)
        assert removed.result == "removed" and removed.state == "removed"
        waiting = send_due(store, transport=transport(inbox), settings=settings, now=T0 + 25 * hour)
        assert waiting.waiting == [draft.id] and len(inbox.messages) == 1
        verified = removal.check_route(store, route_ids[0], now=T0 + 26 * hour, settings=checks)
        assert verified.state == "verified"
        done = send_due(store, transport=transport(inbox), settings=settings, now=T0 + 27 * hour)
        assert done.closed == [draft.id] and len(inbox.messages) == 1
    notice = get_notice(store, draft.id)
    assert notice.state == "closed" and notice.closed_at == T0 + 27 * hour
    assert notice.next_send_at is None


def test_the_token_is_derived_and_only_its_hash_is_stored(store: Store, inbox: Inbox) -> None:
    settings = notice_settings()
    with serving() as site:
        route_ids = routed(store, site, 8)
        draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
        sent = send_notice(
            store, draft.id, actor="u", transport=transport(inbox), settings=settings, now=T0
        )
    assert sent.link_expires_at == T0 + timedelta(days=30)
    token = notices.link_token(LINK_KEY, draft.id, T0 + timedelta(days=30))
    assert len(notices.base64.urlsafe_b64decode(token + "=")) == 32
    assert token in body_of(inbox.messages[0])
    with store.session() as s:
        row = notices.notice_by_token(s, token)
        assert row is not None and row.token_hash == notices.token_hash(token)
        assert token not in repr([row.__dict__])


def test_a_re_notice_issues_a_new_link_before_the_old_one_expires(
    store: Store, inbox: Inbox
) -> None:
    settings = notice_settings(link_days=1)
    with serving() as site:
        route_ids = routed(store, site, 9)
    draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
    mail = transport(inbox)
    send_notice(store, draft.id, actor="u", transport=mail, settings=settings, now=T0)
    later = T0 + timedelta(hours=24)
    send_due(store, transport=mail, settings=settings, now=later)
    first, second = (TOKEN.search(body_of(m)) for m in inbox.messages)
    assert first is not None and second is not None and first.group(1) != second.group(1)
    assert second.group(1) == notices.link_token(LINK_KEY, draft.id, later + timedelta(days=1))
    with pytest.raises(host_links.LinkInvalid):
        host_links.open_link(store, first.group(1), now=later)
    assert host_links.open_link(store, second.group(1), now=later).sends == 2


def test_a_refused_webhook_is_tried_again_only_after_the_interval(
    store: Store, receiver: Receiver
) -> None:
    receiver.status = 410
    settings = notice_settings()
    with serving() as site:
        route_ids = routed(store, site, 10)
    draft = create_notice(
        store,
        route_ids,
        recipient_kind="platform",
        channel="webhook",
        address=receiver.url,
        actor="u",
    )
    failed = send_notice(
        store, draft.id, actor="u", transport=transport(), settings=settings, now=T0
    )
    assert failed.sendings[0].state == "failed" and "HTTP 410" in (failed.sendings[0].error or "")
    assert failed.next_send_at == T0 + settings.renotice and failed.sends == 0
    soon = send_due(store, transport=transport(), settings=settings, now=T0 + timedelta(hours=1))
    assert soon.failed == [] and len(receiver.requests) == 1


def test_a_harvested_photo_is_asked_down_under_the_terms_of_service_not_as_illegal() -> None:
    """A harvested photo is legal: its notice is a terms-of-service request, never a notice of
    illegal content; CSAM stays a DSA Article 16 notice. Neither describes the content."""
    at = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)

    def letter(outcome: str) -> notice_letters.NoticeMessage:
        url = notice_letters.NoticeUrl(
            route_id=1,
            url="https://pics.example/a.jpg",
            sha256="a" * 64,
            pdq="b" * 64,
            captured_at=at,
            outcome=outcome,
        )
        return notice_letters.render_notice(
            reference="CG-N-2026-000009",
            sequence=1,
            recipient_kind="platform",
            recipient_name="Pics",
            urls=[url],
            reason=notice_letters.default_reason([outcome]),
            identity_withheld=False,
            notifier_name="Hotline",
            notifier_email="h@hotline.example",
            link=None,
            link_expires_at=None,
            renotice=timedelta(hours=24),
            first_sent_at=None,
            sent_at=at,
        )

    harvested = letter("harvested")
    assert notice_letters.TERMS_TITLE in harvested.subject
    assert "illegal" not in harvested.subject.lower()
    assert "Digital Services Act" not in harvested.body
    assert "2. Why it must be removed" in harvested.body
    assert harvested.payload["basis"] == "terms-of-service"
    illegal = letter("baseline")
    assert notice_letters.ILLEGAL_TITLE in illegal.subject
    assert "Article 16 of the Digital Services Act" in illegal.body
    assert illegal.payload["basis"] == "dsa-article-16"
    for message in (harvested, illegal):
        assert "https://pics.example/a.jpg" in message.body and "a" * 64 in message.body
