"""The review queue: order, locks (exclusive, expiring, released), skips, items an analyst
voted on, reveals in the audit log, the daily exposure cap and preview preferences, on
SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from argon2 import Parameters, Type
from sqlalchemy import select, update

from childguard.accounts import create_user
from childguard.accounts.passwords import use_parameters
from childguard.hotline import review
from childguard.hotline.assessments import VoteSettings, record_vote
from childguard.hotline.review import ExposureCapReached, ExposureSettings, LockNotHeld
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Item
from childguard.store.models import AuditEvent
from hotline.review_items import make_item


@pytest.fixture(autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    use_parameters(Parameters(Type.ID, 19, 16, 32, 1, 1024, 1))
    yield
    use_parameters(None)


def _analysts(store: Store, n: int) -> list[int]:
    return [
        create_user(
            store,
            f"analyst-{secrets.token_hex(4)}",
            "a long test password",
            actor="t",
            roles=["analyst"],
        ).id
        for _ in range(n)
    ]


def test_the_queue_order_and_locks(store: Store) -> None:
    a, b = _analysts(store, 2)
    now = utcnow()
    old = make_item(store, 11, seen=now - timedelta(hours=2))
    newer = make_item(store, 12, seen=now - timedelta(hours=1))
    urgent = make_item(store, 13, seen=now)
    with store.session() as s:  # a known-abuse match puts an item first (items sets it)
        s.execute(update(Item).where(Item.id == urgent).values(priority=0))
    assert review.next_item(store, a) == urgent
    assert review.next_item(store, a) == urgent  # a held lock comes back
    assert review.next_item(store, b) == old
    assert review.release(store, a, urgent)
    assert not review.release(store, a, urgent)
    assert review.next_item(store, b) == old  # b still holds old
    c = _analysts(store, 1)[0]
    assert review.next_item(store, c) == urgent
    assert review.next_item(store, a) == newer
    assert review.next_item(store, _analysts(store, 1)[0]) is None
    later = utcnow() + timedelta(seconds=review.DEFAULT_LOCK_SECONDS + 1)
    assert review.next_item(store, _analysts(store, 1)[0], now=later) in {old, urgent, newer}


def test_no_two_analysts_ever_hold_one_item(store: Store) -> None:
    analysts = _analysts(store, 4)
    only = make_item(store, 14)
    got: list[int | None] = []
    barrier = threading.Barrier(len(analysts))

    def take(user_id: int) -> None:
        barrier.wait()
        got.append(review.next_item(store, user_id))

    threads = [threading.Thread(target=take, args=(u,)) for u in analysts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got, key=lambda x: x or 0) == [None, None, None, only]


def test_never_an_item_voted_on_skipped_assessed_or_inherited(store: Store) -> None:
    a, b = _analysts(store, 2)
    voted, skipped = make_item(store, 15), make_item(store, 16)
    done, inherited = make_item(store, 17), make_item(store, 18)
    with store.session() as s:
        s.execute(update(Item).where(Item.id == done).values(state="assessed"))
        s.execute(update(Item).where(Item.id == inherited).values(state="inherited"))
    assert review.next_item(store, a) == voted
    record_vote(store, voted, a, {"age_band": "adult", "severity": "none"})
    assert review.next_item(store, a) == skipped
    with pytest.raises(Exception, match="reason"):
        review.skip(store, a, skipped, "  ")
    assert review.skip(store, a, skipped, "needs a colleague who reads the language")
    assert review.next_item(store, a) is None
    assert review.next_item(store, b) == voted
    with store.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "hotline.skip")).one()
        assert event.actor == f"user:{a}" and event.object_id == str(skipped)
        assert event.details == {"reason": "needs a colleague who reads the language"}


def test_a_reveal_is_audited_and_counted_and_the_cap_holds(store: Store) -> None:
    a, b = _analysts(store, 2)
    item_id = make_item(store, 19)
    with pytest.raises(LockNotHeld):
        review.reveal(store, a, item_id, "look closer")
    assert review.next_item(store, a) == item_id
    with pytest.raises(LockNotHeld):
        review.reveal(store, b, item_id)
    seen = review.reveal(store, a, item_id, "check the age band")
    assert seen.reveals == 1
    with store.session() as s:
        event = s.scalars(select(AuditEvent).where(AuditEvent.action == "hotline.reveal")).one()
        assert (event.actor, event.object_type, event.object_id) == (
            f"user:{a}",
            "item",
            str(item_id),
        )
        assert event.details is not None and event.details["reason"] == "check the age band"
    cap = ExposureSettings(daily_cap_seconds=100, break_every_seconds=60)
    assert review.record_exposure(store, a, 30, cap).seconds == 30
    today = review.record_exposure(store, a, 30, cap)
    assert (today.seconds, today.remaining_seconds, today.break_due) == (60, 40, True)
    assert not today.over_cap
    assert review.record_exposure(store, a, 45, cap).over_cap
    with pytest.raises(ExposureCapReached):
        review.reveal(store, a, item_id, settings=cap)
    tomorrow = utcnow() + timedelta(days=1)
    assert review.exposure_today(store, a, cap, now=tomorrow).seconds == 0
    assert review.exposure_today(store, b, cap).seconds == 0


def test_preview_preferences_over_the_organisation_default(store: Store) -> None:
    (a,) = _analysts(store, 1)
    assert review.preview_preferences(store, a) == review.ORGANISATION_PREVIEW
    org = review.PreviewPreferences(blur=5, greyscale=False)
    assert review.preview_preferences(store, a, org) == org
    review.set_preview_preferences(store, a, blur=3, greyscale=True)
    assert review.preview_preferences(store, a, org) == review.PreviewPreferences(3, True)
    with pytest.raises(Exception, match="blur"):
        review.set_preview_preferences(store, a, blur=11, greyscale=True)
    with store.session() as s:
        assert s.scalars(select(AuditEvent).where(AuditEvent.action == "user.preferences")).one()


def test_a_final_item_leaves_the_queue(store: Store) -> None:
    (a,) = _analysts(store, 1)
    item_id = make_item(store, 20)
    record_vote(
        store,
        item_id,
        a,
        {"age_band": "adult", "severity": "none"},
        None,
        VoteSettings(votes_needed=1),
    )
    assert review.next_item(store, _analysts(store, 1)[0]) is None
