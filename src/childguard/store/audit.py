"""Writing to the audit log: every change to the store goes through `record`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from childguard.store.base import utcnow
from childguard.store.models import AuditEvent


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one audit event in the caller's transaction (it commits or rolls back with it)."""
    session.execute(
        insert(AuditEvent).values(
            at=utcnow(),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            details=details,
        )
    )
