# Owns every write of the job table: queueing, claiming, heart-beats, progress and endings.
"""The job queue, kept in the store so that every process of the service shares it.

A job is `queued` by `enqueue`, taken by one worker with `claim` (an UPDATE guarded by the
job's state and checked by its row count, so two workers, threads or processes, never both
win), kept alive with `heartbeat` and `progress`, and ended with `finish`, `fail` or `cancel`.
A `running` job whose worker has not beaten for `stale_after` is claimed again (its attempt
count goes up); after `max_attempts` it fails with the last error it recorded. Every write
checks that the job is still the worker's: a worker that lost its job (cancelled, or taken
over after it stalled) learns so from `JobLost` and stops.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from childguard.errors import ChildguardError
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.job_models import Job

STALE_AFTER = timedelta(seconds=60)
MAX_ATTEMPTS = 3
ENDED = ("done", "failed", "cancelled")
_CANDIDATES = 20


class JobNotFound(ChildguardError):
    """No job has this id (or it is another organisation's)."""


class JobEnded(ChildguardError):
    """The job has already ended; it cannot be cancelled."""


class JobLost(ChildguardError):
    """The worker no longer holds the job: it was cancelled, or claimed again by another."""


@dataclass(frozen=True)
class JobInfo:
    """One job as the store holds it."""

    id: int
    kind: str
    status: str
    params: dict[str, Any]
    total: int | None
    done: int
    result: dict[str, Any] | None
    error: str | None
    organisation_id: int | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def to_dict(self) -> dict[str, Any]:
        """The job as JSON: state, progress, result and error."""

        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "params": self.params,
            "progress": {"done": self.done, "total": self.total},
            "result": self.result,
            "error": self.error,
            "attempts": self.attempts,
            "organisation_id": self.organisation_id,
            "created_by": self.created_by,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "heartbeat_at": iso(self.heartbeat_at),
        }


def _info(job: Job) -> JobInfo:
    return JobInfo(
        id=job.id,
        kind=job.kind,
        status=job.status,
        params=dict(job.params or {}),
        total=job.total,
        done=job.done,
        result=job.result,
        error=job.error,
        organisation_id=job.organisation_id,
        created_by=job.created_by,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        worker=job.worker,
        attempts=job.attempts,
    )


def _updated(session: Session, job_id: int, where: Sequence[Any], **values: Any) -> bool:
    result = session.execute(update(Job).where(Job.id == job_id, *where).values(**values))
    return bool(getattr(result, "rowcount", 0))


def enqueue(
    store: Store,
    kind: str,
    params: dict[str, Any],
    actor: str,
    organisation_id: int | None = None,
    *,
    prepare: Callable[[int], None] | None = None,
) -> JobInfo:
    """Queue a job of `kind`. `prepare(job_id)` runs before the job becomes visible to any
    worker (e.g. to move its upload into place); if it raises, no job is queued."""
    with store.session() as session:
        job = Job(
            kind=kind,
            status="queued",
            params=params,
            organisation_id=organisation_id,
            created_by=actor,
        )
        session.add(job)
        session.flush()
        if prepare is not None:
            prepare(job.id)
        audit.record(
            session,
            actor=actor,
            action="job.enqueue",
            object_type="job",
            object_id=job.id,
            details={"kind": kind, "params": params},
        )
        session.flush()
        return _info(job)


def get_job(store: Store, job_id: int, *, organisation_id: int | None = None) -> JobInfo:
    """One job; JobNotFound if there is none (or, for an `organisation_id`, it is not
    that organisation's)."""
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None or (organisation_id is not None and job.organisation_id != organisation_id):
            raise JobNotFound(f"no job {job_id}")
        return _info(job)


def list_jobs(
    store: Store,
    *,
    before_id: int | None = None,
    limit: int = 50,
    kind: str | None = None,
    status: str | None = None,
    organisation_id: int | None = None,
) -> list[JobInfo]:
    """Jobs newest first, `limit` at a time, those with ids under `before_id`."""
    query = select(Job).order_by(Job.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(Job.id < before_id)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if status is not None:
        query = query.where(Job.status == status)
    if organisation_id is not None:
        query = query.where(Job.organisation_id == organisation_id)
    with store.session() as session:
        return [_info(j) for j in session.scalars(query)]


def claim(
    store: Store,
    worker: str,
    kinds: Sequence[str],
    *,
    stale_after: timedelta = STALE_AFTER,
    max_attempts: int = MAX_ATTEMPTS,
) -> JobInfo | None:
    """Take one job of `kinds` for `worker`: a running one whose worker stopped beating
    first (claimed again, or failed when it has had `max_attempts`), else the oldest queued
    one. None when there is nothing to do. Atomic across threads and processes."""
    if not kinds:
        return None
    now = utcnow()
    cutoff = now - stale_after
    with store.session() as session:
        stale = list(
            session.scalars(
                select(Job)
                .where(Job.status == "running", Job.kind.in_(kinds), Job.heartbeat_at < cutoff)
                .order_by(Job.id)
                .limit(_CANDIDATES)
            )
        )
        queued = list(
            session.scalars(
                select(Job.id)
                .where(Job.status == "queued", Job.kind.in_(kinds))
                .order_by(Job.id)
                .limit(_CANDIDATES)
            )
        )
        stale_rows = [(j.id, j.heartbeat_at, j.attempts, j.error, j.worker) for j in stale]
    for job_id, beat, attempts, error, previous in stale_rows:
        guard = (Job.status == "running", Job.heartbeat_at < cutoff)
        lost = f"worker {previous} stopped heart-beating at {beat.isoformat() if beat else '?'}"
        last = error or lost
        with store.session() as session:
            if attempts >= max_attempts:
                _updated(
                    session,
                    job_id,
                    guard,
                    status="failed",
                    finished_at=now,
                    error=f"gave up after {attempts} attempts; last error: {last}",
                )
                continue
            won = _updated(
                session,
                job_id,
                guard,
                worker=worker,
                heartbeat_at=now,
                attempts=Job.attempts + 1,
                error=last,
            )
        if won:
            return get_job(store, job_id)
    for job_id in queued:
        with store.session() as session:
            won = _updated(
                session,
                job_id,
                (Job.status == "queued",),
                status="running",
                worker=worker,
                heartbeat_at=now,
                started_at=now,
                attempts=Job.attempts + 1,
            )
        if won:
            return get_job(store, job_id)
    return None


def _mine(worker: str) -> tuple[Any, ...]:
    return (Job.status == "running", Job.worker == worker)


def heartbeat(store: Store, job_id: int, worker: str) -> None:
    """The worker is still at it; JobLost if the job is no longer its."""
    with store.session() as session:
        if not _updated(session, job_id, _mine(worker), heartbeat_at=utcnow()):
            raise JobLost(f"job {job_id} is no longer held by {worker}")


def progress(store: Store, job_id: int, worker: str, done: int, total: int | None) -> None:
    """Record how far the job got (and beat); JobLost if the job is no longer the worker's."""
    with store.session() as session:
        if not _updated(
            session, job_id, _mine(worker), done=done, total=total, heartbeat_at=utcnow()
        ):
            raise JobLost(f"job {job_id} is no longer held by {worker}")


def finish(store: Store, job_id: int, worker: str, result: dict[str, Any]) -> bool:
    """The job is done with `result`; False if the worker no longer held it."""
    with store.session() as session:
        return _updated(
            session, job_id, _mine(worker), status="done", result=result, finished_at=utcnow()
        )


def fail(
    store: Store,
    job_id: int,
    worker: str,
    error: str,
    *,
    retry: bool = False,
    max_attempts: int = MAX_ATTEMPTS,
) -> bool:
    """The attempt failed with `error`. With `retry` the job is queued again while it has
    attempts left; otherwise (or then) it is `failed`. False if the worker no longer held it."""
    with store.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != "running" or job.worker != worker:
            return False
        if retry and job.attempts < max_attempts:
            return _updated(
                session, job_id, _mine(worker), status="queued", worker=None, error=error
            )
        if retry:
            error = f"gave up after {job.attempts} attempts; last error: {error}"
        return _updated(
            session, job_id, _mine(worker), status="failed", error=error, finished_at=utcnow()
        )


def release(store: Store, job_id: int, worker: str) -> bool:
    """Give a running job back to the queue unfinished (the worker is stopping); the attempt
    does not count."""
    with store.session() as session:
        return _updated(
            session,
            job_id,
            _mine(worker),
            status="queued",
            worker=None,
            attempts=Job.attempts - 1,
        )


def cancel(store: Store, job_id: int, actor: str, *, organisation_id: int | None = None) -> JobInfo:
    """Cancel a queued or running job (a running one stops at its next heart-beat); JobEnded
    if it has ended already."""
    get_job(store, job_id, organisation_id=organisation_id)
    with store.session() as session:
        if not _updated(
            session,
            job_id,
            (Job.status.in_(("queued", "running")),),
            status="cancelled",
            finished_at=utcnow(),
        ):
            job = session.get(Job, job_id)
            raise JobEnded(f"job {job_id} has already ended ({job.status if job else 'gone'})")
        audit.record(session, actor=actor, action="job.cancel", object_type="job", object_id=job_id)
    return get_job(store, job_id)
