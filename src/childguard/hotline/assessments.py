# Owns every write of assessment and assessment_label: votes, final and supervisor decisions.
"""Assessments and multi-vote.

An analyst records facts (`childguard.hotline.schemes.Facts`); `record_vote` derives the
outcome and every scheme's labels and stores the vote. When `VoteSettings.votes_needed`
analysts (default 2) agree on the outcome and every label, a `final` assessment is made and
the item becomes `assessed` with that outcome; as soon as two votes disagree (or agree that
the outcome is undetermined) the item goes to a supervisor (`in-review`), whose
`supervisor_decide` makes the `supervisor` assessment. An analyst votes once per item, and
not on an item another analyst holds.

Once an item is assessed `baseline` or `nationally-illegal`, its hashes go into the hotline's
own known-abuse bank (`HOTLINE_BANK`, made when missing) through `childguard.banks`, with
source `hotline` and the UK (else the industry) label as classification; its protected-style
signature follows from its evidence (`childguard.hotline.signatures`). A bank match marked
wrong (`mark_match_wrong`) puts the item's matched hash in the `allow` bank `ALLOW_BANK`, with
the reason in its metadata. Every write is audited. `copy_assessment` makes the `inherited`
copy for an item with the same signals as one already assessed.

The bank write runs after the assessment's transaction commits (the banks own their own);
it is idempotent, so `bank_item` may be called again for an item whose write failed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from childguard.banks import BankExists, BankNotFound, EntryRecord, add_entries, create_bank
from childguard.banks.catalog import find_bank
from childguard.errors import ChildguardError
from childguard.hotline.evidence import retention_until
from childguard.hotline.items import inherit_to_duplicates
from childguard.hotline.review import ItemNotFound, release_lock
from childguard.hotline.schemes import ILLEGAL_OUTCOMES, Derivation, Facts, InvalidFacts, derive
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Assessment, AssessmentLabel, Item

HOTLINE_BANK = "HOTLINE_KNOWN_ABUSE"
ALLOW_BANK = "HOTLINE_ALLOW"
HOTLINE_SOURCE = "hotline"
BANKED_SIGNALS = ("sha256", "sha1", "md5", "pdq", "vpdq")
OPEN_STATES = ("new",)


class AlreadyVoted(ChildguardError):
    """The analyst has voted on this item already."""


class ItemNotOpen(ChildguardError):
    """The item takes no votes: it is assessed, inherited, or with a supervisor."""


class LockedByOther(ChildguardError):
    """Another analyst holds the item's review lock."""


class NotAwaitingSupervisor(ChildguardError):
    """The item is not waiting for a supervisor's decision."""


class MatchNotFound(ChildguardError):
    """The item has no bank match with that key."""


@dataclass(frozen=True)
class VoteSettings:
    """How many analysts must agree before an item's assessment is final, and the evidence
    retention (days per outcome, `evidence.RETENTION` when None) a decision sets."""

    votes_needed: int = 2
    retention: Mapping[str, int] | None = None

    def __post_init__(self) -> None:
        if self.votes_needed < 1:
            raise ValueError("votes_needed must be at least 1")


@dataclass(frozen=True)
class VoteResult:
    """What a vote (or decision) did. `status`: `recorded` (more votes needed), `final`
    (enough agreed, or a supervisor decided) or `supervisor` (sent to one)."""

    item_id: int
    assessment_id: int
    outcome: str
    labels: tuple[dict[str, str], ...]
    status: str
    final_assessment_id: int | None = None
    banked: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "assessment_id": self.assessment_id,
            "outcome": self.outcome,
            "labels": list(self.labels),
            "status": self.status,
            "final_assessment_id": self.final_assessment_id,
            "banked": self.banked,
        }


def _facts(facts: Facts | Mapping[str, Any]) -> Facts:
    return facts if isinstance(facts, Facts) else Facts.from_dict(facts)


def _note(note: str | None) -> str | None:
    clean = (note or "").strip() or None
    if clean is not None and len(clean) > 2000:
        raise InvalidFacts("a note must be at most 2000 characters")
    return clean


def _store_assessment(
    session: Session,
    item_id: int,
    kind: str,
    analyst: str,
    derivation: Derivation,
    note: str | None,
    *,
    inherited_from: int | None = None,
) -> Assessment:
    row = Assessment(
        item_id=item_id,
        kind=kind,
        analyst=analyst,
        facts=derivation.facts.to_dict(),
        outcome=derivation.outcome,
        note=note,
        inherited_from=inherited_from,
    )
    session.add(row)
    session.flush()
    for label in derivation.labels:
        session.add(
            AssessmentLabel(
                assessment_id=row.id,
                scheme=label.scheme,
                profile=label.profile,
                version=label.version,
                label=label.label,
            )
        )
    session.flush()
    return row


def _labels(derivation: Derivation) -> tuple[dict[str, str], ...]:
    return tuple(label.to_dict() for label in derivation.labels)


def _vote_keys(session: Session, item_id: int) -> list[tuple[Any, ...]]:
    votes = session.scalars(
        select(Assessment).where(Assessment.item_id == item_id, Assessment.kind == "vote")
    ).all()
    labels: dict[int, list[tuple[str, str, str]]] = {}
    for lb in session.scalars(
        select(AssessmentLabel).where(AssessmentLabel.assessment_id.in_([v.id for v in votes]))
    ):
        labels.setdefault(lb.assessment_id, []).append((lb.scheme, lb.profile, lb.label))
    return [(v.outcome, tuple(sorted(labels.get(v.id, [])))) for v in votes]


def _locked_item(session: Session, item_id: int) -> Item:
    item = session.scalars(select(Item).where(Item.id == item_id).with_for_update()).first()
    if item is None:
        raise ItemNotFound(f"no item {item_id}")
    return item


def _assess(
    session: Session,
    item: Item,
    outcome: str,
    now: datetime,
    actor: str,
    retention: Mapping[str, int] | None = None,
) -> None:
    item.state = "assessed"
    item.outcome = outcome
    item.assessed_at = now
    item.evidence_expires_at = retention_until(outcome, now, retention)
    item.locked_by = None
    item.locked_until = None
    session.flush()
    inherit_to_duplicates(session, item.id, actor=actor, retention=retention)


def record_vote(
    store: Store,
    item_id: int,
    analyst: int,
    facts: Facts | Mapping[str, Any],
    note: str | None = None,
    settings: VoteSettings = VoteSettings(),
) -> VoteResult:
    """Store analyst `analyst`'s (a user id) vote on the item, and make the item final or
    send it to a supervisor when the votes say so. InvalidFacts, ItemNotFound, ItemNotOpen,
    AlreadyVoted or LockedByOther otherwise."""
    derivation = derive(_facts(facts))
    clean_note = _note(note)
    actor = f"user:{analyst}"
    now = utcnow()
    with store.session() as session:
        item = _locked_item(session, item_id)
        if item.state not in OPEN_STATES:
            raise ItemNotOpen(f"item {item_id} is {item.state}: it takes no more votes")
        if (
            item.locked_by is not None
            and item.locked_by != analyst
            and item.locked_until is not None
            and item.locked_until >= now
        ):
            raise LockedByOther(f"item {item_id} is locked to another analyst")
        already = session.scalars(
            select(Assessment.id).where(
                Assessment.item_id == item_id,
                Assessment.kind == "vote",
                Assessment.analyst == actor,
            )
        ).first()
        if already is not None:
            raise AlreadyVoted(f"you have voted on item {item_id} already")
        vote = _store_assessment(session, item_id, "vote", actor, derivation, clean_note)
        release_lock(session, item_id, analyst)
        audit.record(
            session,
            actor=actor,
            action="hotline.vote",
            object_type="item",
            object_id=item_id,
            details={
                "assessment_id": vote.id,
                "facts": derivation.facts.to_dict(),
                "outcome": derivation.outcome,
                "labels": list(_labels(derivation)),
            },
        )
        keys = _vote_keys(session, item_id)
        status, final_id = "recorded", None
        if len(set(keys)) > 1 or (
            len(keys) >= settings.votes_needed and derivation.outcome == "undetermined"
        ):
            status = "supervisor"
            item.state = "in-review"
            audit.record(
                session,
                actor=actor,
                action="hotline.disagreement",
                object_type="item",
                object_id=item_id,
                details={"votes": len(keys), "agreed": len(set(keys)) == 1},
            )
        elif len(keys) >= settings.votes_needed:
            status = "final"
            voters = session.scalars(
                select(Assessment.analyst)
                .where(Assessment.item_id == item_id, Assessment.kind == "vote")
                .order_by(Assessment.id)
            ).all()
            final = _store_assessment(
                session,
                item_id,
                "final",
                "+".join(voters)[:200],
                derivation,
                f"{len(keys)} analysts agreed",
            )
            final_id = final.id
            _assess(session, item, derivation.outcome, now, actor, settings.retention)
            audit.record(
                session,
                actor=actor,
                action="hotline.assess",
                object_type="item",
                object_id=item_id,
                details={
                    "assessment_id": final.id,
                    "kind": "final",
                    "outcome": derivation.outcome,
                    "analysts": list(voters),
                },
            )
        vote_id = vote.id
    banked = bank_item(store, item_id, actor=actor) if status == "final" else 0
    return VoteResult(
        item_id, vote_id, derivation.outcome, _labels(derivation), status, final_id, banked
    )


def supervisor_decide(
    store: Store,
    item_id: int,
    supervisor: int,
    facts: Facts | Mapping[str, Any],
    note: str | None = None,
    settings: VoteSettings = VoteSettings(),
) -> VoteResult:
    """The supervisor's (a user id) decision on an item whose votes disagreed: the
    `supervisor` assessment, and the item assessed. NotAwaitingSupervisor for an item that
    is not with a supervisor; InvalidFacts for facts that leave the outcome undetermined."""
    derivation = derive(_facts(facts))
    if derivation.outcome == "undetermined":
        raise InvalidFacts("a supervisor's decision must determine the outcome (the age band)")
    clean_note = _note(note)
    actor = f"user:{supervisor}"
    now = utcnow()
    with store.session() as session:
        item = _locked_item(session, item_id)
        if item.state != "in-review":
            raise NotAwaitingSupervisor(f"item {item_id} is {item.state}, not with a supervisor")
        row = _store_assessment(session, item_id, "supervisor", actor, derivation, clean_note)
        _assess(session, item, derivation.outcome, now, actor, settings.retention)
        audit.record(
            session,
            actor=actor,
            action="hotline.assess",
            object_type="item",
            object_id=item_id,
            details={
                "assessment_id": row.id,
                "kind": "supervisor",
                "facts": derivation.facts.to_dict(),
                "outcome": derivation.outcome,
                "labels": list(_labels(derivation)),
            },
        )
        row_id = row.id
    banked = bank_item(store, item_id, actor=actor)
    return VoteResult(
        item_id, row_id, derivation.outcome, _labels(derivation), "final", row_id, banked
    )


def disagreements(store: Store, *, limit: int = 100) -> list[dict[str, Any]]:
    """Items waiting for a supervisor, oldest first, each with its votes and their labels."""
    with store.session() as session:
        items = session.scalars(
            select(Item).where(Item.state == "in-review").order_by(Item.first_seen).limit(limit)
        ).all()
        out = []
        for item in items:
            votes = session.scalars(
                select(Assessment)
                .where(Assessment.item_id == item.id, Assessment.kind == "vote")
                .order_by(Assessment.id)
            ).all()
            labels: dict[int, list[dict[str, str]]] = {}
            for lb in session.scalars(
                select(AssessmentLabel).where(
                    AssessmentLabel.assessment_id.in_([v.id for v in votes])
                )
            ):
                labels.setdefault(lb.assessment_id, []).append(
                    {"scheme": lb.scheme, "profile": lb.profile, "label": lb.label}
                )
            out.append(
                {
                    "item_id": item.id,
                    "first_seen": item.first_seen.isoformat(),
                    "votes": [
                        {
                            "assessment_id": v.id,
                            "analyst": v.analyst,
                            "facts": v.facts,
                            "outcome": v.outcome,
                            "note": v.note,
                            "created_at": v.created_at.isoformat(),
                            "labels": labels.get(v.id, []),
                        }
                        for v in votes
                    ],
                }
            )
        return out


def _ensure_bank(store: Store, name: str, kind: str, description: str, actor: str) -> None:
    with store.session() as session:
        try:
            find_bank(session, name)
            return
        except BankNotFound:
            pass
    with contextlib.suppress(BankExists):
        create_bank(store, name, kind, description=description, owner=HOTLINE_SOURCE, actor=actor)


def _classification(labels: Sequence[AssessmentLabel]) -> tuple[str | None, str | None]:
    by = {(lb.scheme, lb.profile): lb.label for lb in labels}
    for key in (("uk", "default"), ("ncmec", "industry"), ("inhope", "default")):
        if key in by:
            return key[0], by[key]
    return None, None


def bank_item(store: Store, item_id: int, *, actor: str) -> int:
    """Put an assessed `baseline` / `nationally-illegal` item's hashes into the hotline's
    known-abuse bank (idempotent); the number of signals written, 0 for other outcomes."""
    with store.session() as session:
        item = session.get(Item, item_id)
        if item is None or item.state != "assessed" or item.outcome not in ILLEGAL_OUTCOMES:
            return 0
        latest = session.scalars(
            select(Assessment)
            .where(Assessment.item_id == item_id, Assessment.kind.in_(("final", "supervisor")))
            .order_by(Assessment.id.desc())
        ).first()
        labels = (
            session.scalars(
                select(AssessmentLabel).where(AssessmentLabel.assessment_id == latest.id)
            ).all()
            if latest is not None
            else []
        )
        scheme, label = _classification(labels)
        signals = {
            name: value
            for name, value in (item.signals or {}).items()
            if name in BANKED_SIGNALS and isinstance(value, str) and value
        }
        meta = {
            "hotline": {
                "item_id": item.id,
                "assessment_id": latest.id if latest is not None else None,
                "outcome": item.outcome,
            }
        }
    if not signals:
        return 0
    _ensure_bank(store, HOTLINE_BANK, "known-abuse", "assessed by the hotline's analysts", actor)
    records = [
        EntryRecord(
            name,
            value,
            source=HOTLINE_SOURCE,
            original_id=f"item:{item_id}",
            classification_scheme=scheme,
            classification_label=label,
            metadata=meta,
        )
        for name, value in signals.items()
    ]
    add_entries(store, HOTLINE_BANK, records, actor=actor, source=HOTLINE_SOURCE)
    return len(records)


def _match_of(matches: Sequence[Mapping[str, Any]], match_key: str) -> Mapping[str, Any] | None:
    for match in matches:
        entry_id = match.get("entry_id")
        if match_key in (f"entry:{entry_id}", str(entry_id)):
            return match
    return None


def mark_match_wrong(
    store: Store, item_id: int, match_key: str, analyst: int, reason: str
) -> dict[str, Any]:
    """Mark one of the item's bank matches (`entry:<id>`) a false positive: the item's
    matched hash goes into the allow bank `ALLOW_BANK` with the reason, so that it matches
    nothing again. MatchNotFound for a key the item has no match under."""
    clean = reason.strip()
    if not clean or len(clean) > 500:
        raise InvalidFacts("a false positive needs a reason of 1-500 characters")
    actor = f"user:{analyst}"
    with store.session() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise ItemNotFound(f"no item {item_id}")
        match = _match_of(item.matches or [], match_key)
        if match is None:
            raise MatchNotFound(f"item {item_id} has no match {match_key!r}")
        signal_type = str(match["signal_type"])
        value = str(match.get("query_value") or match["value"])
        meta = {
            "false_positive": {
                "reason": clean,
                "item_id": item_id,
                "bank": match.get("bank_name"),
                "entry_id": match.get("entry_id"),
                "by": actor,
                "at": utcnow().isoformat(),
            }
        }
    _ensure_bank(store, ALLOW_BANK, "allow", "false positives marked by the hotline", actor)
    add_entries(
        store,
        ALLOW_BANK,
        [EntryRecord(signal_type, value, source=HOTLINE_SOURCE, metadata=meta)],
        actor=actor,
        source=HOTLINE_SOURCE,
    )
    with store.session() as session:
        audit.record(
            session,
            actor=actor,
            action="hotline.false_positive",
            object_type="item",
            object_id=item_id,
            details={"match": match_key, "signal_type": signal_type, "reason": clean},
        )
    return {
        "item_id": item_id,
        "match": match_key,
        "bank": ALLOW_BANK,
        "signal_type": signal_type,
        "value": value,
    }
