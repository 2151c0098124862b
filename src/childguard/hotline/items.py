# Owns every write of the item and item_place tables (but the review lock and evidence columns).
"""Items: one per piece of media across every report and crawl, and the places each was seen.

`record_content` finds or creates the item for one hashed piece of media: exact by SHA-256,
else near by PDQ (photos) or vPDQ (videos) within `DedupeSettings` against the items already
known, through an in-process index (`ItemIndex`) that follows the `item` table by id as the
matcher's bank indexes follow the banks, so no call scans the table. A near duplicate is an
item of its own (its bytes differ) that points at the item it duplicates (`duplicate_of`, always
the first of its group) and never enters the review queue by itself. Each call adds (or
refreshes) the place: URL, page, report and report URL, first and last seen, `times_seen`. Bank
matches (`Match.to_dict()`, with provenance and classification) are kept on the item; a match in
a `known-abuse` bank puts the item (and the item it duplicates) first in the queue, priority 0.

Inheritance: when the item, or the item it duplicates, already has a `final` or `supervisor`
assessment, a new item gets an `inherited` copy of it (outcome, facts, labels; `inherited_from`)
and the state `inherited`: the analyst never sees it. `inherit_assessment` writes that copy and
`inherit_to_duplicates` hands a new final assessment down to the near duplicates that waited
for it; the assessments module calls the latter after a decision. `inherited_share` is the
share of items that inherited.

The review lock and `analyst_exposure` belong to `childguard.hotline.review`; the evidence
columns to `childguard.hotline.evidence`. Every write here is audited in its transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from childguard.hotline.evidence import retention_until
from childguard.index.pdq import PdqIndex
from childguard.index.vpdq import DEFAULT_VPDQ_THRESHOLD, VpdqIndex, VpdqThreshold
from childguard.matcher import Match
from childguard.signals.content import ContentSignals
from childguard.store import account_models as _user_table  # noqa: F401 (item.locked_by's table)
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Assessment, AssessmentLabel, Item, ItemPlace
from childguard.store.url_keys import url_key

ACTOR = "hotline"
KNOWN_ABUSE = "known-abuse"
DECIDED_KINDS = ("final", "supervisor")
PRIORITY_KNOWN_ABUSE = 0
PRIORITY_DEFAULT = 100


@dataclass(frozen=True)
class DedupeSettings:
    """How near two items must be to be one: PDQ Hamming distance, vPDQ frame shares."""

    pdq: int = 31
    vpdq: VpdqThreshold = field(default_factory=lambda: DEFAULT_VPDQ_THRESHOLD)


@dataclass(frozen=True)
class Place:
    """Where a piece of media was seen."""

    url: str
    page_url: str | None = None
    report_id: int | None = None
    report_url_id: int | None = None
    source: str = "report"
    seen_at: datetime | None = None


@dataclass(frozen=True)
class ItemOutcome:
    """What `record_content` did: the item, whether it is new, which item it duplicates, whether
    it inherited an assessment, and whether it (still) waits for an analyst."""

    item_id: int
    created: bool
    duplicate_of: int | None
    state: str
    priority: int
    inherited: bool
    new_place: bool

    @property
    def needs_review(self) -> bool:
        return self.state in ("new", "in-review")


class ItemIndex:
    """PDQ and vPDQ of every item, following the `item` table by id: each sync reads only the
    rows past its watermark (and starts over if the table was emptied). Items are not removed
    by the hotline; a deleted item's id found here is skipped when its row is gone."""

    def __init__(self) -> None:
        self.watermark = 0
        self.pdq: PdqIndex | None = None
        self.vpdq: VpdqIndex | None = None
        self.lock = threading.Lock()

    def sync(self, session: Session) -> None:
        newest = session.scalar(select(func.max(Item.id))) or 0
        if newest < self.watermark:  # the table was emptied (ids start again): rebuild
            self.watermark, self.pdq, self.vpdq = 0, None, None
        rows = session.execute(
            select(Item.id, Item.pdq, Item.signals)
            .where(Item.id > self.watermark)
            .order_by(Item.id)
        ).all()
        pdq_ids: list[int] = []
        pdq_values: list[str] = []
        vpdq_ids: list[int] = []
        vpdq_values: list[str] = []
        for item_id, pdq, signals in rows:
            if pdq:
                pdq_ids.append(item_id)
                pdq_values.append(pdq)
            video = (signals or {}).get("vpdq")
            if video:
                vpdq_ids.append(item_id)
                vpdq_values.append(video)
            self.watermark = max(self.watermark, item_id)
        if pdq_ids:
            ids = np.asarray(pdq_ids, dtype=np.int64)
            if self.pdq is None:
                self.pdq = PdqIndex.from_values(ids, pdq_values)
            else:
                self.pdq.add_values(ids, pdq_values)
        if vpdq_ids:
            ids = np.asarray(vpdq_ids, dtype=np.int64)
            if self.vpdq is None:
                self.vpdq = VpdqIndex.from_values(ids, vpdq_values)
            else:
                self.vpdq.add_values(ids, vpdq_values)

    def near(self, signals: ContentSignals, dedupe: DedupeSettings) -> list[int]:
        """Ids of items near `signals`, the nearest first."""
        found: list[tuple[float, int]] = []
        pdq = signals.value("pdq")
        if pdq and self.pdq is not None:
            for item_id, comparison in self.pdq.query([pdq], dedupe.pdq)[0]:
                found.append((float(comparison.distance), int(item_id)))
        video = signals.value("vpdq")
        if video and self.vpdq is not None:
            for item_id, comparison in self.vpdq.query([video], dedupe.vpdq)[0]:
                found.append((float(comparison.distance), int(item_id)))
        return [item_id for _, item_id in sorted(found)]


_INDEXES: dict[str, ItemIndex] = {}
_INDEXES_LOCK = threading.Lock()


def item_index(store: Store) -> ItemIndex:
    """The process's item index of `store` (one per database)."""
    key = str(store.engine.url)
    with _INDEXES_LOCK:
        index = _INDEXES.get(key)
        if index is None:
            index = _INDEXES[key] = ItemIndex()
        return index


def decided_assessment(session: Session, item_ids: list[int]) -> Assessment | None:
    """The latest `final` or `supervisor` assessment of any of `item_ids`."""
    if not item_ids:
        return None
    return session.scalars(
        select(Assessment)
        .where(Assessment.item_id.in_(item_ids), Assessment.kind.in_(DECIDED_KINDS))
        .order_by(Assessment.created_at.desc(), Assessment.id.desc())
        .limit(1)
    ).first()


def inherit_assessment(
    session: Session,
    item_id: int,
    source: Assessment,
    *,
    actor: str = ACTOR,
    retention: Mapping[str, int] | None = None,
) -> int:
    """Give item `item_id` an `inherited` copy of `source` (outcome, facts, labels) and the
    state `inherited`, in the caller's transaction (its evidence kept for `retention`'s days
    for the outcome, `evidence.RETENTION` when None); the new assessment's id."""
    copy = Assessment(
        item_id=item_id,
        kind="inherited",
        analyst=source.analyst,
        facts=dict(source.facts or {}),
        outcome=source.outcome,
        note=source.note,
        inherited_from=source.id,
    )
    session.add(copy)
    session.flush()
    labels = session.scalars(
        select(AssessmentLabel).where(AssessmentLabel.assessment_id == source.id)
    ).all()
    for label in labels:
        session.add(
            AssessmentLabel(
                assessment_id=copy.id,
                scheme=label.scheme,
                profile=label.profile,
                version=label.version,
                label=label.label,
            )
        )
    now = utcnow()
    session.execute(
        update(Item)
        .where(Item.id == item_id)
        .values(
            state="inherited",
            outcome=source.outcome,
            assessed_at=now,
            evidence_expires_at=retention_until(source.outcome, now, retention),
        )
    )
    audit.record(
        session,
        actor=actor,
        action="item.inherit",
        object_type="item",
        object_id=item_id,
        details={"assessment": copy.id, "from": source.id, "outcome": source.outcome},
    )
    return copy.id


def inherit_to_duplicates(
    session: Session,
    item_id: int,
    *,
    actor: str = ACTOR,
    retention: Mapping[str, int] | None = None,
) -> list[int]:
    """After item `item_id` got a `final` or `supervisor` assessment: every near duplicate of
    it still waiting (`new`) inherits it. The ids of the items that did."""
    source = decided_assessment(session, [item_id])
    if source is None:
        return []
    waiting = session.scalars(
        select(Item.id).where(Item.duplicate_of == item_id, Item.state == "new")
    ).all()
    for duplicate in waiting:
        inherit_assessment(session, duplicate, source, actor=actor, retention=retention)
    return list(waiting)


def _match_dicts(matches: list[Match]) -> list[dict[str, Any]]:
    return [m.to_dict() for m in matches]


def _merge_matches(
    old: list[dict[str, Any]] | None, new: list[dict[str, Any]]
) -> list[dict[str, Any]] | None:
    merged = {(m["bank_id"], m["entry_id"]): m for m in old or []}
    for m in new:
        merged.setdefault((m["bank_id"], m["entry_id"]), m)
    return list(merged.values()) or None


def _known_abuse(matches: list[dict[str, Any]] | None) -> bool:
    return any(m.get("bank_kind") == KNOWN_ABUSE for m in matches or [])


def _add_place(session: Session, item_id: int, place: Place, now: datetime) -> bool:
    """Add the place, or refresh its last seen; True when it is new."""
    key = url_key(place.url)
    query = select(ItemPlace).where(ItemPlace.item_id == item_id, ItemPlace.url_key == key)
    if place.report_url_id is None:
        query = query.where(ItemPlace.report_url_id.is_(None))
    else:
        query = query.where(ItemPlace.report_url_id == place.report_url_id)
    existing = session.scalars(query.limit(1)).first()
    if existing is not None:
        existing.last_seen = now
        return False
    session.add(
        ItemPlace(
            item_id=item_id,
            report_id=place.report_id,
            report_url_id=place.report_url_id,
            source=place.source,
            url=place.url,
            page_url=place.page_url,
            first_seen=now,
            last_seen=now,
        )
    )
    session.flush()
    return True


def _new_item(
    session: Session,
    signals: ContentSignals,
    sha256: str,
    matches: list[dict[str, Any]] | None,
    duplicate_of: int | None,
    now: datetime,
) -> Item:
    item = Item(
        sha256=sha256,
        md5=signals.value("md5"),
        pdq=signals.value("pdq"),
        content_type=signals.content_type or "photo",
        media_type=signals.format,
        width=signals.width,
        height=signals.height,
        byte_size=signals.size or 0,
        signals=signals.to_dict(),
        matches=matches,
        duplicate_of=duplicate_of,
        state="new",
        priority=PRIORITY_KNOWN_ABUSE if _known_abuse(matches) else PRIORITY_DEFAULT,
        first_seen=now,
        last_seen=now,
        times_seen=0,
    )
    session.add(item)
    session.flush()
    return item


def record_content(
    store: Store,
    signals: ContentSignals,
    matches: list[Match],
    place: Place,
    *,
    dedupe: DedupeSettings | None = None,
    actor: str = ACTOR,
) -> ItemOutcome:
    """Find or create the item of `signals` (hashed without error, with a SHA-256), add
    `place` to it and keep `matches` on it (see the module doc). Idempotent: the same content
    at the same place again changes only its last seen."""
    sha256 = signals.value("sha256")
    if not signals.ok or not sha256:
        raise ValueError(f"content without signals cannot become an item: {signals.error}")
    settings = dedupe or DedupeSettings()
    found = _match_dicts(matches)
    for _ in range(3):
        try:
            return _record(store, signals, sha256, found, place, settings, actor)
        except IntegrityError:  # another worker created the same item or place: find it
            continue
    return _record(store, signals, sha256, found, place, settings, actor)


def _record(
    store: Store,
    signals: ContentSignals,
    sha256: str,
    matches: list[dict[str, Any]],
    place: Place,
    dedupe: DedupeSettings,
    actor: str,
) -> ItemOutcome:
    now = place.seen_at or utcnow()
    index = item_index(store)
    with store.session() as session:
        item = session.scalars(select(Item).where(Item.sha256 == sha256)).first()
        created = item is None
        inherited = False
        if item is None:
            with index.lock:
                index.sync(session)
                near = index.near(signals, dedupe)
            root: int | None = None
            for candidate in near:
                row = session.get(Item, candidate)
                if row is not None:
                    root = row.duplicate_of or row.id
                    break
            item = _new_item(session, signals, sha256, matches or None, root, now)
            audit.record(
                session,
                actor=actor,
                action="item.create",
                object_type="item",
                object_id=item.id,
                details={
                    "sha256": sha256,
                    "duplicate_of": root,
                    "matches": len(matches),
                    "report": place.report_id,
                },
            )
            source = decided_assessment(session, [root] if root else [])
            if source is not None:
                inherit_assessment(session, item.id, source, actor=actor)
                inherited = True
        else:
            merged = _merge_matches(item.matches, matches)
            if merged != item.matches:
                item.matches = merged
                if _known_abuse(merged):
                    item.priority = PRIORITY_KNOWN_ABUSE
                audit.record(
                    session,
                    actor=actor,
                    action="item.matches",
                    object_type="item",
                    object_id=item.id,
                    details={"matches": len(merged or [])},
                )
        if _known_abuse(item.matches) and item.duplicate_of is not None:
            session.execute(
                update(Item)
                .where(Item.id == item.duplicate_of, Item.priority > PRIORITY_KNOWN_ABUSE)
                .values(priority=PRIORITY_KNOWN_ABUSE)
            )
        new_place = _add_place(session, item.id, place, now)
        if new_place:
            item.times_seen = (item.times_seen or 0) + 1
            item.last_seen = max(item.last_seen, now) if item.last_seen else now
            audit.record(
                session,
                actor=actor,
                action="item.place",
                object_type="item",
                object_id=item.id,
                details={
                    "report": place.report_id,
                    "report_url": place.report_url_id,
                    "source": place.source,
                },
            )
        else:
            item.last_seen = now
        session.flush()
        session.refresh(item)
        return ItemOutcome(
            item_id=item.id,
            created=created,
            duplicate_of=item.duplicate_of,
            state=item.state,
            priority=item.priority,
            inherited=inherited,
            new_place=new_place,
        )


def waits_for_review(outcome: ItemOutcome) -> bool:
    """Whether an item brings review work: it waits for an analyst and is not a near duplicate
    of an item that does (the duplicate inherits that item's decision)."""
    return outcome.needs_review and outcome.duplicate_of is None


def inherited_share(store: Store) -> float:
    """The share of items that inherited an assessment (0.0 with no items)."""
    with store.session() as session:
        total = session.scalar(select(func.count()).select_from(Item)) or 0
        inherited = (
            session.scalar(select(func.count()).select_from(Item).where(Item.state == "inherited"))
            or 0
        )
    return inherited / total if total else 0.0
