# Owns the review queue: item locks, skips, reveals, analysts' daily exposure and preview choices.
"""The review queue's library.

`next_item` gives an analyst the highest-priority `new` item (priority, then the oldest first
seen) that nobody else holds, and locks it to them in one guarded UPDATE (`locked_by IS NULL
OR locked_until < now`, checked by its row count), so two analysts never get the same item,
on SQLite as on PostgreSQL. An analyst who holds a live lock gets that item back. Never an
item that is `inherited`, `assessed` or with a supervisor (`in-review`), never a near
duplicate waiting for the item it duplicates, never one the analyst voted on, nor one they
skipped in the last `skip_hours`.

Wellbeing: every reveal is audited (`hotline.reveal`: who, what, when, why) and counted in
`analyst_exposure.reveals`; the seconds of content on screen are added per analyst per UTC
day (`record_exposure`), against a daily cap (`ExposureSettings`), so the pages can refuse
more viewing and remind the analyst to take breaks. Preview preferences (blur level,
greyscale) are kept in the user's preferences, over the organisation's default.

This module writes the review lock of `item` (`locked_by`, `locked_until`) and
`analyst_exposure`; every write is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from childguard.accounts.users import get_preferences, set_preferences
from childguard.errors import ChildguardError, InputFormatError
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import (
    AnalystExposure,
    Assessment,
    AssessmentLabel,
    Item,
    ItemPlace,
    Report,
)
from childguard.store.models import AuditEvent

DEFAULT_LOCK_SECONDS = 600
MAX_LOCK_SECONDS = 3600
_CANDIDATES = 20


class ItemNotFound(ChildguardError):
    """No item has that id."""


class LockNotHeld(ChildguardError):
    """The analyst does not hold the item's review lock (never had it, or it expired)."""


class ExposureCapReached(ChildguardError):
    """The analyst has had the day's cap of content on screen."""


@dataclass(frozen=True)
class ExposureSettings:
    """The daily cap of seconds of content on screen, and how often to remind of a break."""

    daily_cap_seconds: int = 120 * 60
    break_every_seconds: int = 20 * 60


@dataclass(frozen=True)
class PreviewPreferences:
    """How previews are shown: blurred (0 none - 10 most) and in greyscale, by default."""

    blur: int = 8
    greyscale: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"blur": self.blur, "greyscale": self.greyscale}


ORGANISATION_PREVIEW = PreviewPreferences()


@dataclass(frozen=True)
class Exposure:
    """One analyst's exposure today (UTC)."""

    user_id: int
    day: str
    seconds: int
    reveals: int
    cap_seconds: int
    break_every_seconds: int

    @property
    def remaining_seconds(self) -> int:
        return max(0, self.cap_seconds - self.seconds)

    @property
    def over_cap(self) -> bool:
        return self.seconds >= self.cap_seconds

    @property
    def break_due(self) -> bool:
        """Whether the seconds today just passed another multiple of the break interval."""
        every = self.break_every_seconds
        return every > 0 and self.seconds > 0 and self.seconds % every < 60

    def to_dict(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "seconds": self.seconds,
            "reveals": self.reveals,
            "cap_seconds": self.cap_seconds,
            "remaining_seconds": self.remaining_seconds,
            "over_cap": self.over_cap,
            "break_due": self.break_due,
        }


def _actor(user_id: int) -> str:
    return f"user:{user_id}"


def _day(now: datetime) -> str:
    return now.date().isoformat()


def _held(item: Item, user_id: int, now: datetime) -> bool:
    return item.locked_by == user_id and item.locked_until is not None and item.locked_until >= now


def next_item(
    store: Store,
    user_id: int,
    lock_seconds: int = DEFAULT_LOCK_SECONDS,
    *,
    skip_hours: float = 12.0,
    now: datetime | None = None,
) -> int | None:
    """Lock the next item to the analyst and return its id; None when the queue has nothing
    for them. The lock lasts `lock_seconds` (1 - MAX_LOCK_SECONDS)."""
    if not 1 <= lock_seconds <= MAX_LOCK_SECONDS:
        raise InputFormatError(f"lock_seconds must be 1-{MAX_LOCK_SECONDS}, not {lock_seconds}")
    at = now or utcnow()
    until = at + timedelta(seconds=lock_seconds)
    actor = _actor(user_id)
    with store.session() as session:
        held = session.scalars(
            select(Item.id)
            .where(Item.state == "new", Item.locked_by == user_id, Item.locked_until >= at)
            .order_by(Item.priority, Item.first_seen, Item.id)
            .limit(1)
        ).first()
        if held is not None:
            return int(held)
    free = or_(Item.locked_by.is_(None), Item.locked_until < at)
    voted = exists().where(
        Assessment.item_id == Item.id, Assessment.kind == "vote", Assessment.analyst == actor
    )
    skipped = exists().where(
        AuditEvent.object_type == "item",
        AuditEvent.action == "hotline.skip",
        AuditEvent.actor == actor,
        AuditEvent.at >= at - timedelta(hours=skip_hours),
        AuditEvent.object_id == _item_key(Item.id),
    )
    while True:
        with store.session() as session:
            candidates = session.scalars(
                select(Item.id)
                .where(Item.state == "new", Item.duplicate_of.is_(None), free, ~voted, ~skipped)
                .order_by(Item.priority, Item.first_seen, Item.id)
                .limit(_CANDIDATES)
            ).all()
        if not candidates:
            return None
        for item_id in candidates:
            with store.session() as session:
                taken = session.execute(
                    update(Item)
                    .where(Item.id == item_id, Item.state == "new", free)
                    .values(locked_by=user_id, locked_until=until)
                    .execution_options(synchronize_session=False)
                )
                if getattr(taken, "rowcount", 0) == 1:
                    audit.record(
                        session,
                        actor=actor,
                        action="hotline.lock",
                        object_type="item",
                        object_id=item_id,
                        details={"until": until.isoformat()},
                    )
                    return int(item_id)


def _item_key(column: Any) -> Any:
    """The item id as the audit log's text object id, in SQL."""
    return cast(column, String)


def release_lock(session: Session, item_id: int, user_id: int) -> bool:
    """Clear the analyst's lock on the item in the caller's transaction (no audit event: the
    caller records why); False when they did not hold it."""
    result = session.execute(
        update(Item)
        .where(Item.id == item_id, Item.locked_by == user_id)
        .values(locked_by=None, locked_until=None)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def release(store: Store, user_id: int, item_id: int) -> bool:
    """Give the item back to the queue; False when the analyst did not hold it."""
    with store.session() as session:
        released = release_lock(session, item_id, user_id)
        if released:
            audit.record(
                session,
                actor=_actor(user_id),
                action="hotline.release",
                object_type="item",
                object_id=item_id,
            )
        return released


def skip(store: Store, user_id: int, item_id: int, reason: str) -> bool:
    """Give the item back with a reason; it is not offered to this analyst again for a while.
    False when the analyst did not hold it."""
    clean = reason.strip()
    if not clean or len(clean) > 500:
        raise InputFormatError("a skip needs a reason of 1-500 characters")
    with store.session() as session:
        released = release_lock(session, item_id, user_id)
        if released:
            audit.record(
                session,
                actor=_actor(user_id),
                action="hotline.skip",
                object_type="item",
                object_id=item_id,
                details={"reason": clean},
            )
        return released


def _add_exposure(
    session: Session, user_id: int, day: str, *, seconds: int = 0, reveals: int = 0
) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(AnalystExposure).values(
        user_id=user_id, day=day, seconds=seconds, reveals=reveals
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=[AnalystExposure.user_id, AnalystExposure.day],
            set_={
                "seconds": AnalystExposure.seconds + seconds,
                "reveals": AnalystExposure.reveals + reveals,
            },
        )
    )


def exposure_today(
    store: Store,
    user_id: int,
    settings: ExposureSettings = ExposureSettings(),
    *,
    now: datetime | None = None,
) -> Exposure:
    """The analyst's seconds and reveals today, against the cap."""
    day = _day(now or utcnow())
    with store.session() as session:
        row = session.get(AnalystExposure, (user_id, day))
        seconds, reveals = (row.seconds, row.reveals) if row is not None else (0, 0)
    return Exposure(
        user_id, day, seconds, reveals, settings.daily_cap_seconds, settings.break_every_seconds
    )


def record_exposure(
    store: Store,
    user_id: int,
    seconds: int,
    settings: ExposureSettings = ExposureSettings(),
    *,
    now: datetime | None = None,
) -> Exposure:
    """Add `seconds` (0 - 3600) of content on screen to the analyst's day."""
    if not 0 <= seconds <= 3600:
        raise InputFormatError(f"seconds must be 0-3600, not {seconds}")
    at = now or utcnow()
    with store.session() as session:
        _add_exposure(session, user_id, _day(at), seconds=seconds)
    return exposure_today(store, user_id, settings, now=at)


def reveal(
    store: Store,
    user_id: int,
    item_id: int,
    reason: str | None = None,
    settings: ExposureSettings = ExposureSettings(),
    *,
    now: datetime | None = None,
) -> Exposure:
    """Record a deliberate reveal of the item's content by the analyst who holds its lock:
    an audit event and a count. LockNotHeld for anyone else; ExposureCapReached when the
    day's cap is used up."""
    at = now or utcnow()
    clean = (reason or "").strip() or None
    if clean is not None and len(clean) > 500:
        raise InputFormatError("a reveal's reason must be at most 500 characters")
    if exposure_today(store, user_id, settings, now=at).over_cap:
        raise ExposureCapReached(
            "today's viewing cap is reached: take a break; the queue opens again tomorrow"
        )
    with store.session() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise ItemNotFound(f"no item {item_id}")
        if not _held(item, user_id, at):
            raise LockNotHeld(f"item {item_id} is not locked to you: take it from the queue")
        _add_exposure(session, user_id, _day(at), reveals=1)
        audit.record(
            session,
            actor=_actor(user_id),
            action="hotline.reveal",
            object_type="item",
            object_id=item_id,
            details={"reason": clean, "at": at.isoformat()},
        )
    return exposure_today(store, user_id, settings, now=at)


def holds_lock(store: Store, user_id: int, item_id: int, *, now: datetime | None = None) -> bool:
    """Whether the analyst holds the item's live review lock."""
    with store.session() as session:
        item = session.get(Item, item_id)
        return item is not None and _held(item, user_id, now or utcnow())


def preview_preferences(
    store: Store, user_id: int, default: PreviewPreferences = ORGANISATION_PREVIEW
) -> PreviewPreferences:
    """The analyst's preview choices, over the organisation's default."""
    raw = get_preferences(store, user_id).get("preview")
    chosen = raw if isinstance(raw, Mapping) else {}
    blur = chosen.get("blur", default.blur)
    greyscale = chosen.get("greyscale", default.greyscale)
    return PreviewPreferences(
        blur if isinstance(blur, int) else default.blur,
        greyscale if isinstance(greyscale, bool) else default.greyscale,
    )


def set_preview_preferences(
    store: Store, user_id: int, *, blur: int, greyscale: bool
) -> PreviewPreferences:
    """Keep the analyst's preview choices (blur 0-10), audited."""
    if not 0 <= blur <= 10:
        raise InputFormatError(f"blur must be 0-10, not {blur}")
    chosen = PreviewPreferences(blur, greyscale)
    set_preferences(store, user_id, {"preview": chosen.to_dict()}, actor=_actor(user_id))
    return chosen


def item_view(store: Store, item_id: int) -> dict[str, Any]:
    """What the review shows of an item, never its media: its signals, matches with their
    provenance, the places it was seen (with the hints of the report that brought each), what
    those reports suspect it is, and its earlier assessments with their labels."""
    with store.session() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise ItemNotFound(f"no item {item_id}")
        places = session.scalars(
            select(ItemPlace).where(ItemPlace.item_id == item_id).order_by(ItemPlace.id)
        ).all()
        report_ids = sorted({p.report_id for p in places if p.report_id is not None})
        hints: dict[int, dict[str, Any]] = {}
        if report_ids:
            hints = {
                rid: dict(h or {})
                for rid, h in session.execute(
                    select(Report.id, Report.hints).where(Report.id.in_(report_ids))
                )
            }
        assessments = session.scalars(
            select(Assessment).where(Assessment.item_id == item_id).order_by(Assessment.id)
        ).all()
        labels: dict[int, list[dict[str, str]]] = {}
        if assessments:
            for lb in session.scalars(
                select(AssessmentLabel).where(
                    AssessmentLabel.assessment_id.in_([a.id for a in assessments])
                )
            ):
                labels.setdefault(lb.assessment_id, []).append(
                    {
                        "scheme": lb.scheme,
                        "profile": lb.profile,
                        "version": lb.version,
                        "label": lb.label,
                    }
                )
        return {
            "id": item.id,
            "state": item.state,
            "priority": item.priority,
            "outcome": item.outcome,
            "content_type": item.content_type,
            "media_type": item.media_type,
            "width": item.width,
            "height": item.height,
            "byte_size": item.byte_size,
            "first_seen": item.first_seen.isoformat(),
            "last_seen": item.last_seen.isoformat(),
            "times_seen": item.times_seen,
            "locked_until": item.locked_until.isoformat() if item.locked_until else None,
            "signals": {k: v for k, v in (item.signals or {}).items() if k not in ("path",)},
            "matches": item.matches or [],
            # What the reports that brought it suspect (`suspected` hints), for the review.
            "suspected": sorted(
                {str(h["suspected"]) for h in hints.values() if h.get("suspected")}
            ),
            "places": [
                {
                    "url": p.url,
                    "page_url": p.page_url,
                    "source": p.source,
                    "report_id": p.report_id,
                    "hints": hints.get(p.report_id, {}) if p.report_id is not None else {},
                    "first_seen": p.first_seen.isoformat(),
                    "last_seen": p.last_seen.isoformat(),
                }
                for p in places
            ],
            "assessments": [
                {
                    "id": a.id,
                    "kind": a.kind,
                    "analyst": a.analyst,
                    "outcome": a.outcome,
                    "facts": a.facts,
                    "note": a.note,
                    "created_at": a.created_at.isoformat(),
                    "labels": sorted(
                        labels.get(a.id, []), key=lambda x: (x["scheme"], x["profile"])
                    ),
                }
                for a in assessments
            ],
        }


__all__ = [
    "DEFAULT_LOCK_SECONDS",
    "ORGANISATION_PREVIEW",
    "Exposure",
    "ExposureCapReached",
    "ExposureSettings",
    "ItemNotFound",
    "LockNotHeld",
    "PreviewPreferences",
    "exposure_today",
    "holds_lock",
    "item_view",
    "next_item",
    "preview_preferences",
    "record_exposure",
    "release",
    "release_lock",
    "reveal",
    "set_preview_preferences",
    "skip",
]
