# Owns reading the audit log: filtered pages of events and a streaming export of them.
"""Reading the audit log that `childguard.store.audit.record` writes.

`list_events` answers one page of events matching a filter, oldest first after `after_id` or
newest first before `before_id`; `iter_events` yields every matching event oldest first, a
batch per query, so a log of any size is read in constant memory. An export stops at the newest
event there was when it began: events written while it runs are not in it.

Filters: `actor` (exact), `action` (the action itself or every action under it: `key` and
`key.` both match `key.create` and `key.revoke`), `object_type` and `object_id` (exact),
`since` (at or after) and `until` (before), as aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select

from childguard.errors import InputFormatError
from childguard.store.db import Store
from childguard.store.models import AuditEvent

EXPORT_BATCH = 1_000


@dataclass(frozen=True)
class AuditFilter:
    """Which events to read; None matches any."""

    actor: str | None = None
    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InputFormatError(f"{name} needs a time zone (e.g. 2027-01-01T00:00:00Z)")


@dataclass(frozen=True)
class AuditRecord:
    """One audit event as plain data."""

    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "details": self.details,
        }


def _record(row: AuditEvent) -> AuditRecord:
    return AuditRecord(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        details=row.details,
    )


def _filtered(query: Select[Any], where: AuditFilter) -> Select[Any]:
    if where.actor is not None:
        query = query.where(AuditEvent.actor == where.actor)
    if where.action:
        action = where.action.rstrip(".")
        query = query.where(
            or_(
                AuditEvent.action == action,
                AuditEvent.action.startswith(action + ".", autoescape=True),
            )
        )
    if where.object_type is not None:
        query = query.where(AuditEvent.object_type == where.object_type)
    if where.object_id is not None:
        query = query.where(AuditEvent.object_id == where.object_id)
    if where.since is not None:
        query = query.where(AuditEvent.at >= where.since)
    if where.until is not None:
        query = query.where(AuditEvent.at < where.until)
    return query


def list_events(
    store: Store,
    *,
    actor: str | None = None,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    after_id: int | None = None,
    before_id: int | None = None,
    newest_first: bool = False,
) -> list[AuditRecord]:
    """At most `limit` events matching the filter: oldest first (after `after_id`), or with
    `newest_first` newest first (before `before_id`)."""
    where = AuditFilter(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id) if object_id is not None else None,
        since=since,
        until=until,
    )
    query = _filtered(select(AuditEvent), where)
    if after_id is not None:
        query = query.where(AuditEvent.id > after_id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    order = AuditEvent.id.desc() if newest_first else AuditEvent.id
    with store.session() as session:
        return [_record(r) for r in session.scalars(query.order_by(order).limit(limit))]


def iter_events(
    store: Store, where: AuditFilter | None = None, *, batch: int = EXPORT_BATCH
) -> Iterator[AuditRecord]:
    """Every event matching `where`, oldest first, read `batch` at a time (each batch its own
    query), up to the newest event when iteration began: none written after is read."""
    where = where or AuditFilter()
    with store.session() as session:
        last = session.scalar(select(func.max(AuditEvent.id)))
    if last is None:
        return
    after = 0
    while True:
        query = _filtered(select(AuditEvent), where).where(
            AuditEvent.id > after, AuditEvent.id <= last
        )
        with store.session() as session:
            rows = [_record(r) for r in session.scalars(query.order_by(AuditEvent.id).limit(batch))]
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].id
