"""Removal checks against a real local site: the same bytes are still online, a re-encoded copy
is changed, a deleted file or another picture is removed, a server error changes nothing, a
removal holds for the verification time before it is verified, and content that comes back
puts the route back; an unconfirmed route is never fetched; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from childguard.hotline import removal, routing
from childguard.hotline.notices import create_notice, send_notice
from childguard.store.db import Store
from childguard.store.referral_models import RemovalCheck
from hotline.hotline_site import Route, near_duplicate, serving
from hotline.notice_fixtures import (
    T0,
    Inbox,
    inbox,
    notice_settings,
    removal_settings,
    routed,
    transport,
)
from sample_media import jpeg_bytes

__all__ = ["inbox"]
HOUR = timedelta(hours=1)


def test_the_same_bytes_are_still_online_and_a_near_copy_is_changed(store: Store) -> None:
    checks = removal_settings()
    with serving() as site:
        (route_id,) = routed(store, site, 11, path="/a.jpg")
        same = removal.check_route(store, route_id, now=T0 + HOUR, settings=checks)
        assert (same.result, same.state, same.http_status) == ("still-online", "assessed", None)
        site.image("/a.jpg", near_duplicate(jpeg_bytes(11)))
        near = removal.check_route(store, route_id, now=T0 + 2 * HOUR, settings=checks)
        assert near.result == "changed" and near.state == "assessed"
        assert near.pdq_distance is not None and near.pdq_distance <= 31
        assert near.sha256 != same.sha256
    route = routing.get_route(store, route_id)
    assert route.last_check_result == "changed" and route.next_check_at == T0 + 8 * HOUR
    with store.session() as s:
        rows = s.scalars(select(RemovalCheck).where(RemovalCheck.route_id == route_id)).all()
        assert [r.result for r in rows] == ["still-online", "changed"]


def test_a_taken_down_file_is_removed_then_verified_after_the_verification_time(
    store: Store, inbox: Inbox
) -> None:
    checks = removal_settings()
    with serving() as site:
        (route_id,) = routed(store, site, 12, path="/b.jpg")
        draft = create_notice(store, [route_id], recipient_kind="host", channel="email", actor="u")
        send_notice(
            store, draft.id, actor="u", transport=transport(inbox), settings=notice_settings()
        )
        assert routing.get_route(store, route_id).state == "notified"
        del site.routes["/b.jpg"]  # the host takes the file down: 404
        gone = removal.check_route(store, route_id, now=T0 + HOUR, settings=checks)
        assert (gone.result, gone.state, gone.http_status) == ("removed", "removed", 404)
        route = routing.get_route(store, route_id)
        assert route.removed_at == T0 + HOUR
        assert route.next_check_at == T0 + 25 * HOUR  # verification needs a later check
        soon = removal.check_route(store, route_id, now=T0 + 2 * HOUR, settings=checks)
        assert soon.state == "removed"  # not yet held for verify_after
        held = removal.check_route(store, route_id, now=T0 + 25 * HOUR, settings=checks)
        assert held.state == "verified"
    route = routing.get_route(store, route_id)
    assert route.verified_at == T0 + 25 * HOUR and route.next_check_at is None
    with pytest.raises(routing.InvalidRoute):
        removal.check_route(store, route_id, now=T0 + 26 * HOUR, settings=checks)


def test_content_that_comes_back_puts_the_route_back_and_errors_change_nothing(
    store: Store,
) -> None:
    checks = removal_settings()
    with serving() as site:
        (route_id,) = routed(store, site, 13, path="/c.jpg")
        data = jpeg_bytes(13)
        site.routes["/c.jpg"] = Route(b"busy", "text/plain", 503)
        error = removal.check_route(store, route_id, now=T0 + HOUR, settings=checks)
        assert (error.result, error.state, error.http_status) == ("error", "assessed", 503)
        site.image("/c.jpg", jpeg_bytes(99))  # another picture at the same address
        other = removal.check_route(store, route_id, now=T0 + 2 * HOUR, settings=checks)
        assert other.result == "removed" and other.detail == "a different picture"
        assert other.pdq_distance is not None and other.pdq_distance > 31
        site.image("/c.jpg", data)  # and back again
        back = removal.check_route(store, route_id, now=T0 + 3 * HOUR, settings=checks)
        assert back.result == "still-online" and back.state == "assessed"
        assert routing.get_route(store, route_id).removed_at is None
        site.page("/c.jpg")  # an HTML page now
        page = removal.check_route(store, route_id, now=T0 + 4 * HOUR, settings=checks)
        assert page.result == "removed" and "no longer media" in page.detail


def test_an_unconfirmed_route_is_never_fetched_and_only_due_routes_are_checked(
    store: Store,
) -> None:
    checks = removal_settings()
    with serving() as site:
        (unconfirmed,) = routed(store, site, 14, path="/d.jpg", confirm=False)
        with pytest.raises(routing.RouteNotConfirmed):
            removal.check_route(store, unconfirmed, now=T0, settings=checks)
        (confirmed,) = routed(store, site, 15, path="/e.jpg")
        site.hits.clear()
        assert removal.check_due(store, now=T0 + 5 * HOUR, settings=checks) == []
        done = removal.check_due(store, now=T0 + 6 * HOUR, settings=checks)
        assert [d.route_id for d in done] == [confirmed]
        assert site.hits == ["/e.jpg"]


def test_the_address_policy_applies_and_a_host_that_is_gone_is_removed(store: Store) -> None:
    with serving() as site:
        (route_id,) = routed(store, site, 16, path="/f.jpg")
        site.hits.clear()
        refused = removal.check_route(
            store, route_id, now=T0 + HOUR, settings=removal_settings(allow_private=False)
        )
        assert refused.result == "error" and "not fetched" in refused.detail
        assert site.hits == []
    # The site is gone: nothing answers at its address any more.
    gone = removal.check_route(store, route_id, now=T0 + 2 * HOUR, settings=removal_settings())
    assert gone.result == "removed" and gone.detail.startswith("the host is gone")


def test_what_a_refused_fetch_says_of_the_content() -> None:
    """Gone: a 4xx but 408/429, a name that no longer exists, a refused connection. Not known
    yet: 5xx, 408, 429, a resolver that failed, a timeout, the policy."""
    from childguard.netguard.fetch import FetchRefused

    def result(exc: FetchRefused) -> str:
        return removal._refused(exc).result

    assert result(FetchRefused("x answered 404", reason="status", status=404)) == "removed"
    assert result(FetchRefused("x answered 451", reason="status", status=451)) == "removed"
    for status in (500, 503, 408, 429):
        assert result(FetchRefused("x", reason="status", status=status)) == "error"
    assert result(FetchRefused("cannot resolve 'gone.example'", reason="unresolvable")) == (
        "removed"
    )
    assert result(FetchRefused("cannot resolve 'x': try again", reason="resolve-failed")) == (
        "error"
    )
    refused = FetchRefused("cannot fetch x: [Errno 111] Connection refused", reason="network")
    assert result(refused) == "removed"
    assert result(FetchRefused("cannot fetch x: timed out", reason="network")) == "error"
    assert result(FetchRefused("x is not fetched: a private address")) == "error"
