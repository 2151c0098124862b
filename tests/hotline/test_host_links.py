"""The host link's library: it opens the notice without an account (every use audited as a
notice event), takes one claim of removal that only brings the removal check forward, keeps
comments, and refuses an unknown, altered or expired token alike; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from childguard.hotline import host_links, notices, removal, routing
from childguard.hotline.host_links import AlreadyClaimed, LinkInvalid
from childguard.hotline.notices import create_notice, send_notice
from childguard.store.db import Store
from childguard.store.models import AuditEvent
from childguard.store.referral_models import NoticeEvent
from hotline.hotline_site import serving
from hotline.notice_fixtures import (
    LINK_KEY,
    T0,
    Inbox,
    inbox,
    notice_settings,
    removal_settings,
    routed,
    transport,
)

__all__ = ["inbox"]
HOUR = timedelta(hours=1)


def _sent_notice(store: Store, inbox: Inbox, route_ids: list[int]) -> tuple[int, str]:
    draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="user:5")
    send_notice(
        store,
        draft.id,
        actor="user:5",
        transport=transport(inbox),
        settings=notice_settings(),
        now=T0,
    )
    return draft.id, notices.link_token(LINK_KEY, draft.id, T0 + timedelta(days=30))


def test_the_link_shows_the_notice_and_takes_one_claim_that_a_check_must_confirm(
    store: Store, inbox: Inbox
) -> None:
    with serving() as site:
        route_ids = routed(store, site, 21, path="/x.jpg")
        notice_id, token = _sent_notice(store, inbox, route_ids)
        view = host_links.open_link(store, token, now=T0 + HOUR)
        assert view.reference.startswith("CG-N-") and view.state == "open" and not view.claimed
        assert [u.url for u in view.urls] == [site.url("/x.jpg")]
        assert view.urls[0].status == "online"
        shown = str(view.to_dict())
        assert "user:5" not in shown and "Test Hotline" not in shown and "@" not in shown

        claimed = host_links.claim_removed(store, token, now=T0 + 2 * HOUR, comment="deleted it")
        assert claimed.claimed and claimed.claimed_at == T0 + 2 * HOUR
        route = routing.get_route(store, route_ids[0])
        assert route.state == "notified"  # a claim marks nothing removed
        assert route.next_check_at == T0 + 2 * HOUR  # the check comes forward
        with pytest.raises(AlreadyClaimed, match="reported already"):
            host_links.claim_removed(store, token, now=T0 + 3 * HOUR)

        # The claim was false: the check finds the file still there.
        due = removal.check_due(store, now=T0 + 2 * HOUR, settings=removal_settings())
        assert [(d.route_id, d.result) for d in due] == [(route_ids[0], "still-online")]
        assert routing.get_route(store, route_ids[0]).state == "notified"

        host_links.comment(store, token, "we are looking at it", now=T0 + 4 * HOUR)
        later = host_links.open_link(store, token, now=T0 + 5 * HOUR)
        assert later.comments == [(T0 + 4 * HOUR, "we are looking at it")]
    with store.session() as s:
        kinds = s.scalars(
            select(NoticeEvent.kind)
            .where(NoticeEvent.notice_id == notice_id)
            .order_by(NoticeEvent.id)
        ).all()
        assert kinds == ["viewed", "claimed-removed", "comment", "viewed"]
        actions = s.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.actor == host_links.ACTOR)
            .order_by(AuditEvent.id)
        ).all()
        assert actions == [
            "notice.link_viewed",
            "notice.link_claimed_removed",
            "notice.link_comment",
            "notice.link_viewed",
        ]


def test_unknown_altered_and_expired_tokens_get_the_same_refusal(
    store: Store, inbox: Inbox
) -> None:
    with serving() as site:
        _, token = _sent_notice(store, inbox, routed(store, site, 22))
    altered = token[:-1] + ("A" if token[-1] != "A" else "B")
    expired_at = T0 + timedelta(days=30)
    for bad, now in ((altered, T0), ("", T0), ("x" * 43, T0), (token, expired_at)):
        with pytest.raises(LinkInvalid) as raised:
            host_links.open_link(store, bad, now=now)
        assert str(raised.value) == "this notice link is not valid or has expired"
        with pytest.raises(LinkInvalid):
            host_links.claim_removed(store, bad, now=now)
    assert host_links.open_link(store, token, now=expired_at - timedelta(seconds=1)).sends == 1


def test_a_draft_notice_has_no_link(store: Store) -> None:
    with serving() as site:
        route_ids = routed(store, site, 23)
    draft = create_notice(store, route_ids, recipient_kind="host", channel="email", actor="u")
    token = notices.link_token(LINK_KEY, draft.id, T0 + timedelta(days=30))
    with pytest.raises(LinkInvalid):
        host_links.open_link(store, token, now=T0)
