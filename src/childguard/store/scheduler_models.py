# Owns the scheduler's tables: each scheduled task's lease and schedule, and its runs.
"""ORM models of scheduled tasks. Only `childguard.jobs.schedule` writes them.

`task_lease` holds one row per task: when it is due next (`next_run_at`), which node holds it
and until when (`lease_holder`, `lease_until`: a node takes a task with an UPDATE guarded by
`lease_until < now`, so two nodes on one database never both hold it), its last run and how
many runs in a row failed. `task_run` records every run: the node, start and end, `running`,
`ok` or `failed`, the error and a JSON summary of what it did.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow

RUN_STATES = ("running", "ok", "failed")
_STATE_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in RUN_STATES) + ")"


class TaskLease(Base):
    """One scheduled task's schedule and lease."""

    __tablename__ = "task_lease"

    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    interval_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    next_run_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    lease_holder: Mapped[str | None] = mapped_column(String(200), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_run_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"TaskLease(task={self.task!r}, holder={self.lease_holder!r})"


class TaskRun(Base):
    """One run of a scheduled task."""

    __tablename__ = "task_run"
    __table_args__ = (
        CheckConstraint(_STATE_CHECK, name="status"),
        Index("ix_task_run_task_started", "task", "started_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    status: Mapped[str] = mapped_column(String(16), default="running")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)

    def __repr__(self) -> str:
        return f"TaskRun(id={self.id!r}, task={self.task!r}, status={self.status!r})"
