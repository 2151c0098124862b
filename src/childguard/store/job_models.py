# Owns the job table: long work the service runs in the background (bulk imports, ...).
"""ORM model of background jobs. Only `childguard.jobs` writes it: a job is queued by the
API, claimed by one worker of the scheduler (`worker`, `heartbeat_at`), and ends `done` or
`failed`; a job whose worker stopped beating is claimed again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow

JOB_STATES = ("queued", "running", "done", "failed", "cancelled")
_STATE_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in JOB_STATES) + ")"


class Job(Base):
    """One background job: what to do (`kind`, `params`), how far it got and how it ended."""

    __tablename__ = "job"
    __table_args__ = (
        CheckConstraint(_STATE_CHECK, name="status"),
        Index("ix_job_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    params: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    organisation_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    worker: Mapped[str | None] = mapped_column(String(200), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, kind={self.kind!r}, status={self.status!r})"
