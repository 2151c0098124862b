"""Votes, multi-vote and supervisors, the hotline's banks and false positives, on SQLite and
PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import Parameters, Type
from sqlalchemy import select

from childguard.accounts import create_user
from childguard.accounts.passwords import use_parameters
from childguard.banks import get_bank, iter_entry_records
from childguard.hotline import review
from childguard.hotline.assessments import (
    ALLOW_BANK,
    HOTLINE_BANK,
    AlreadyVoted,
    ItemNotOpen,
    LockedByOther,
    MatchNotFound,
    NotAwaitingSupervisor,
    VoteSettings,
    disagreements,
    mark_match_wrong,
    record_vote,
    supervisor_decide,
)
from childguard.hotline.schemes import InvalidFacts
from childguard.matcher import Matcher
from childguard.pipeline import hash_bytes
from childguard.store.db import Store
from childguard.store.hotline_models import Assessment, AssessmentLabel, Item
from childguard.store.models import AuditEvent
from hotline.review_items import make_item
from sample_media import jpeg_bytes

BASELINE = {"age_band": "prepubescent", "severity": "A"}
NOT_ILLEGAL = {"age_band": "adult", "severity": "none"}


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


def _labels(store: Store, assessment_id: int) -> set[tuple[str, str, str, str]]:
    with store.session() as s:
        rows = s.scalars(
            select(AssessmentLabel).where(AssessmentLabel.assessment_id == assessment_id)
        ).all()
        return {(r.scheme, r.profile, r.version, r.label) for r in rows}


def test_two_agreeing_analysts_make_it_final_and_bank_its_hashes(
    store: Store, tmp_path: Path
) -> None:
    a, b = _analysts(store, 2)
    item_id = make_item(store, 1)
    first = record_vote(store, item_id, a, BASELINE, "first look")
    assert first.status == "recorded" and first.outcome == "baseline"
    with store.session() as s:
        assert s.get(Item, item_id).state == "new"  # type: ignore[union-attr]
    with pytest.raises(AlreadyVoted):
        record_vote(store, item_id, a, BASELINE)
    second = record_vote(store, item_id, b, BASELINE)
    assert second.status == "final" and second.final_assessment_id is not None
    assert second.banked >= 3  # sha256, md5, pdq (and sha1)
    labels = _labels(store, second.final_assessment_id)
    assert labels == {
        ("inhope", "default", "1", "baseline"),
        ("uk", "default", "2014", "A"),
        ("ncmec", "industry", "2022", "A1"),
        ("vics", "US", "2.0", "1"),
        ("vics", "UK", "2.0", "1"),
    }
    with store.session() as s:
        item = s.get(Item, item_id)
        assert item is not None and item.state == "assessed" and item.outcome == "baseline"
        final = s.get(Assessment, second.final_assessment_id)
        assert final is not None and final.kind == "final"
        assert final.analyst == f"user:{a}+user:{b}"
        actions = s.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == str(item_id))
        ).all()
        assert actions.count("hotline.vote") == 2 and "hotline.assess" in actions
    assert get_bank(store, HOTLINE_BANK).kind == "known-abuse"
    entries = list(iter_entry_records(store, HOTLINE_BANK))
    assert {e.signal_type for e in entries} >= {"sha256", "md5", "pdq"}
    assert all(e.source == "hotline" for e in entries)
    assert {(e.classification_scheme, e.classification_label) for e in entries} == {("uk", "A")}
    with pytest.raises(ItemNotOpen):
        record_vote(store, item_id, _analysts(store, 1)[0], BASELINE)
    outcome = Matcher(store, index_base=tmp_path).match(hash_bytes(jpeg_bytes(1)))
    assert {m.bank_name for m in outcome.matches} == {HOTLINE_BANK}
    assert not Matcher(store, index_base=tmp_path).match(hash_bytes(jpeg_bytes(2))).matches


def test_a_disagreement_goes_to_a_supervisor(store: Store) -> None:
    a, b, boss = _analysts(store, 3)
    item_id = make_item(store, 3)
    record_vote(store, item_id, a, BASELINE)
    split = record_vote(store, item_id, b, {"age_band": "pubescent", "severity": "A"})
    assert split.status == "supervisor"
    waiting = disagreements(store)
    assert [w["item_id"] for w in waiting] == [item_id]
    assert {v["outcome"] for v in waiting[0]["votes"]} == {"baseline", "nationally-illegal"}
    assert review.next_item(store, boss) is None  # with a supervisor: not in the queue
    with pytest.raises(InvalidFacts):
        supervisor_decide(store, item_id, boss, {"age_band": "unknown", "severity": "A"})
    decided = supervisor_decide(store, item_id, boss, BASELINE, "baseline: age is clear")
    assert decided.status == "final" and decided.outcome == "baseline" and decided.banked
    with store.session() as s:
        row = s.get(Assessment, decided.assessment_id)
        assert row is not None and row.kind == "supervisor" and row.analyst == f"user:{boss}"
    assert disagreements(store) == []
    with pytest.raises(NotAwaitingSupervisor):
        supervisor_decide(store, item_id, boss, BASELINE)


def test_a_not_illegal_or_harvested_item_is_not_banked(store: Store) -> None:
    a, b = _analysts(store, 2)
    clean, harvested = make_item(store, 4), make_item(store, 5)
    record_vote(store, clean, a, NOT_ILLEGAL)
    assert record_vote(store, clean, b, NOT_ILLEGAL).banked == 0
    photo = {"age_band": "prepubescent", "severity": "posed", "harvested": True}
    record_vote(store, harvested, a, photo)
    result = record_vote(store, harvested, b, photo)
    assert result.status == "final" and result.outcome == "harvested" and result.banked == 0
    with store.session() as s:
        assert s.get(Item, harvested).outcome == "harvested"  # type: ignore[union-attr]
    with pytest.raises(Exception, match="no bank"):
        get_bank(store, HOTLINE_BANK)


def test_one_vote_is_enough_when_so_configured_and_undetermined_goes_up(store: Store) -> None:
    (a,) = _analysts(store, 1)
    item_id, unsure = make_item(store, 6), make_item(store, 7)
    single = VoteSettings(votes_needed=1)
    assert record_vote(store, item_id, a, NOT_ILLEGAL, settings=single).status == "final"
    result = record_vote(store, unsure, a, {"age_band": "unknown", "severity": "B"}, None, single)
    assert result.status == "supervisor" and result.outcome == "undetermined"


def test_a_vote_on_an_item_another_analyst_holds_is_refused(store: Store) -> None:
    a, b = _analysts(store, 2)
    item_id = make_item(store, 8)
    assert review.next_item(store, a) == item_id
    with pytest.raises(LockedByOther):
        record_vote(store, item_id, b, BASELINE)
    record_vote(store, item_id, a, BASELINE)
    assert not review.holds_lock(store, a, item_id)  # a vote gives the item back
    assert review.next_item(store, b) == item_id


def test_a_match_marked_wrong_goes_to_the_allow_bank_and_silences_it(
    store: Store, tmp_path: Path
) -> None:
    (a,) = _analysts(store, 1)
    item_id = make_item(store, 9)
    record_vote(store, item_id, a, BASELINE, settings=VoteSettings(votes_needed=1))
    record = hash_bytes(jpeg_bytes(9))
    match = Matcher(store, index_base=tmp_path).match(record).matches[0]
    other = make_item(store, 9 + 1000, matches=[match])
    with pytest.raises(MatchNotFound):
        mark_match_wrong(store, other, "entry:999999", a, "benign")
    marked = mark_match_wrong(store, other, match.key, a, "a benign lookalike")
    assert marked["bank"] == ALLOW_BANK
    assert get_bank(store, ALLOW_BANK).kind == "allow"
    (entry,) = list(iter_entry_records(store, ALLOW_BANK))
    assert entry.metadata is not None
    assert entry.metadata["false_positive"]["reason"] == "a benign lookalike"
    assert entry.metadata["false_positive"]["item_id"] == other
    outcome = Matcher(store, index_base=tmp_path / "again").match(record)
    assert not outcome.matches and {m.bank_name for m in outcome.suppressed} == {HOTLINE_BANK}
    with store.session() as s:
        assert s.scalars(
            select(AuditEvent).where(AuditEvent.action == "hotline.false_positive")
        ).one()
