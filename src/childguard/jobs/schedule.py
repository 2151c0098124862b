# Owns every write of the task_lease and task_run tables: which node runs a scheduled task,
# when it runs next, and the record of its runs.
"""Scheduled tasks kept in the store, so that every node of the service shares one schedule.

Each task has one `task_lease` row. A node takes a due task with `claim`: an UPDATE guarded
by `next_run_at <= now` and `lease_until < now` (or no lease), checked by its row count, so
two threads, processes or nodes sharing one database never both hold it. The winner holds the
lease until `now + lease`, renews it while the run goes on (`renew`, or the `Renewer` thread
of `run_task`), and ends the run with `finish` (the next run is `interval` after it) or
`fail` (the next run backs off: `Backoff.delay(failures)`, doubling from `base` to `cap`).

A node that dies mid-run (killed, its machine gone) stops renewing; once its lease has
expired another node claims the task, and the dead node's run is recorded as `failed` with
"the lease of <node> expired". A node that was only slow learns at its next renewal that it
lost the lease (`renew` answers False; `run_task` sets the run's stop event), and its late
`finish` changes nothing.

Every function takes the time from `now` (a callable returning an aware UTC datetime), so
tests move the clock by hand. `request_run` makes a task due at once (the "run now" of the
supervisors' page), audited. `task_states` and `recent_runs` read it all back. Only the last
`KEEP_RUNS` runs of each task are kept.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from childguard.errors import ChildguardError
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.scheduler_models import TaskLease, TaskRun

Clock = Callable[[], datetime]
DEFAULT_LEASE = timedelta(minutes=2)
KEEP_RUNS = 200
ERROR_MAX = 4000


class _Idle(dict[str, Any]):
    """The summary of a run that found nothing to do (see `IDLE`)."""


# What a task's work returns when it found nothing to do: the run is not recorded (a task
# that looks every few seconds would otherwise push its real runs out of the record).
IDLE: Mapping[str, Any] = _Idle()


class TaskNotFound(ChildguardError):
    """No scheduled task has this name."""


class TaskProblem(ChildguardError):
    """A run did its round but part of it failed (a crawl refused, an alert undelivered): the
    run is recorded as failed with this message and `summary`, and the task runs again at its
    usual interval (no back-off: the round itself worked)."""

    def __init__(self, message: str, summary: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = dict(summary or {})


@dataclass(frozen=True)
class Backoff:
    """The pause before retrying a task whose run failed: `base` after the first failure,
    doubling with each failure in a row, never more than `cap`."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def delay(self, failures: int) -> timedelta:
        if failures <= 0:
            return timedelta(0)
        factor = 2 ** min(failures - 1, 40)
        return min(self.cap, self.base * factor)


@dataclass(frozen=True)
class Lease:
    """A task held by one node for one run."""

    task: str
    holder: str
    run_id: int
    until: datetime


@dataclass(frozen=True)
class RunInfo:
    """One recorded run."""

    id: int
    task: str
    node: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    error: str | None
    summary: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task": self.task,
            "node": self.node,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "status": self.status,
            "error": self.error,
            "summary": self.summary,
        }


@dataclass(frozen=True)
class TaskState:
    """One task's schedule, lease and last runs."""

    task: str
    interval_seconds: float
    next_run_at: datetime
    lease_holder: str | None
    lease_until: datetime | None
    failures: int
    looked_at: datetime | None = None  # when a node last took it (or ended a run)
    runs: list[RunInfo] = field(default_factory=list)

    def held(self, now: datetime) -> bool:
        """Whether a node holds the task's lease at `now`."""
        return self.lease_until is not None and self.lease_until >= now

    @property
    def last_run(self) -> RunInfo | None:
        return self.runs[0] if self.runs else None

    def to_dict(self, now: datetime) -> dict[str, Any]:
        until = self.lease_until if self.held(now) else None
        return {
            "task": self.task,
            "interval_seconds": self.interval_seconds,
            "next_run_at": self.next_run_at.isoformat(),
            "lease_holder": self.lease_holder if until is not None else None,
            "lease_until": until.isoformat() if until is not None else None,
            "consecutive_failures": self.failures,
            "looked_at": self.looked_at.isoformat() if self.looked_at else None,
            "runs": [r.to_dict() for r in self.runs],
        }


def _run_info(run: TaskRun) -> RunInfo:
    return RunInfo(
        id=run.id,
        task=run.task,
        node=run.node,
        started_at=run.started_at,
        ended_at=run.ended_at,
        status=run.status,
        error=run.error,
        summary=dict(run.summary) if run.summary is not None else None,
    )


def ensure_task(store: Store, task: str, interval: timedelta, *, now: Clock = utcnow) -> None:
    """Make the task's row if it has none (due at once), and keep its interval current."""
    seconds = interval.total_seconds()
    with store.session() as session:
        result = session.execute(
            update(TaskLease)
            .where(TaskLease.task == task)
            .values(interval_seconds=seconds)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0):
            return
    try:
        with store.session() as session:
            at = now()
            session.add(
                TaskLease(
                    task=task, interval_seconds=seconds, next_run_at=at, failures=0, updated_at=at
                )
            )
    except IntegrityError:  # another node made it first
        return


def claim(
    store: Store,
    task: str,
    holder: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    now: Clock = utcnow,
    force: bool = False,
) -> Lease | None:
    """Take `task` for one run by `holder` if it is due (or with `force`, due or not) and no
    live lease holds it; None otherwise. Atomic across threads, processes and nodes. The run
    is recorded (`running`); a run left `running` by a node whose lease expired is recorded
    as failed. TaskNotFound for a task with no row (see `ensure_task`)."""
    at = now()
    until = at + lease
    due = () if force else (TaskLease.next_run_at <= at,)
    with store.session() as session:
        # The guarded UPDATE comes first, so that on SQLite the transaction takes the write
        # lock at once (waiting for it) rather than upgrading a read.
        result = session.execute(
            update(TaskLease)
            .where(
                TaskLease.task == task,
                *due,
                or_(TaskLease.lease_until.is_(None), TaskLease.lease_until < at),
            )
            .values(lease_holder=holder, lease_until=until, updated_at=at)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            if session.get(TaskLease, task) is None:
                raise TaskNotFound(f"no scheduled task {task!r}")
            return None
        for dead in session.scalars(
            select(TaskRun).where(TaskRun.task == task, TaskRun.status == "running")
        ):
            dead.status, dead.ended_at = "failed", at
            dead.error = (
                f"the lease of {dead.node} expired before its run ended (the node stopped or "
                f"lost the database); {holder} took the task over"
            )
        run = TaskRun(task=task, node=holder, started_at=at, status="running")
        session.add(run)
        session.flush()
        session.execute(
            update(TaskLease)
            .where(TaskLease.task == task, TaskLease.lease_holder == holder)
            .values(last_run_id=run.id)
            .execution_options(synchronize_session=False)
        )
        return Lease(task=task, holder=holder, run_id=run.id, until=until)


def _mine(lease: Lease) -> tuple[Any, ...]:
    """The lease row while it is still this run's: another node that took the task over
    changed its holder and its last run."""
    return (
        TaskLease.task == lease.task,
        TaskLease.lease_holder == lease.holder,
        TaskLease.last_run_id == lease.run_id,
    )


def renew(
    store: Store, lease: Lease, *, extend: timedelta = DEFAULT_LEASE, now: Clock = utcnow
) -> bool:
    """Keep holding the task for `extend` more; False when the lease is no longer the
    holder's (another node took the task over after it expired, or the run ended)."""
    at = now()
    with store.session() as session:
        result = session.execute(
            update(TaskLease)
            .where(*_mine(lease), TaskLease.lease_until.is_not(None))
            .values(lease_until=at + extend, updated_at=at)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))


def _end(
    store: Store,
    lease: Lease,
    *,
    status: str,
    error: str | None,
    summary: Mapping[str, Any] | None,
    next_run: Callable[[float, int, datetime], tuple[datetime, int]],
    now: Clock,
    idle: bool = False,
) -> bool:
    with store.session() as session:
        row = session.get(TaskLease, lease.task)
        interval, failures = (row.interval_seconds, row.failures) if row else (60.0, 0)
    at = now()
    when, count = next_run(interval, failures, at)
    with store.session() as session:
        result = session.execute(
            update(TaskLease)
            .where(*_mine(lease), TaskLease.lease_until.is_not(None))
            .values(
                next_run_at=when,
                failures=count,
                lease_holder=None,
                lease_until=None,
                updated_at=at,
                **({"last_run_id": None} if idle else {}),
            )
            .execution_options(synchronize_session=False)
        )
        ours = bool(getattr(result, "rowcount", 0))
        if ours and idle:
            session.execute(
                delete(TaskRun)
                .where(TaskRun.id == lease.run_id)
                .execution_options(synchronize_session=False)
            )
            return True
        session.execute(
            update(TaskRun)
            .where(TaskRun.id == lease.run_id, TaskRun.status == "running")
            .values(
                status=status if ours else "failed",
                ended_at=at,
                error=error if ours else _lost(lease, error),
                summary=dict(summary) if summary is not None else None,
            )
            .execution_options(synchronize_session=False)
        )
        if ours:
            _prune(session, lease.task)
        return ours


def _lost(lease: Lease, error: str | None) -> str:
    lost = f"{lease.holder} lost the lease before the run ended"
    return f"{lost}; {error}" if error else lost


def _prune(session: Session, task: str) -> None:
    cutoff = session.scalar(
        select(TaskRun.id)
        .where(TaskRun.task == task)
        .order_by(TaskRun.id.desc())
        .offset(KEEP_RUNS)
        .limit(1)
    )
    if cutoff is not None:
        session.execute(
            delete(TaskRun)
            .where(TaskRun.task == task, TaskRun.id <= cutoff, TaskRun.status != "running")
            .execution_options(synchronize_session=False)
        )


def finish(
    store: Store,
    lease: Lease,
    *,
    summary: Mapping[str, Any] | None = None,
    now: Clock = utcnow,
    idle: bool = False,
) -> bool:
    """The run ended well: recorded `ok`, the lease released, the next run one interval on.
    With `idle` (it found nothing to do) the run leaves no record; the task's row still says
    when it last looked (`TaskState.looked_at`). False when the lease had been lost (the run
    is then recorded as failed)."""
    return _end(
        store,
        lease,
        status="ok",
        error=None,
        summary=summary,
        next_run=lambda interval, _failures, at: (at + timedelta(seconds=interval), 0),
        now=now,
        idle=idle,
    )


def fail(
    store: Store,
    lease: Lease,
    error: str,
    *,
    summary: Mapping[str, Any] | None = None,
    backoff: Backoff | None = Backoff(),
    now: Clock = utcnow,
) -> bool:
    """The run failed with `error`: recorded `failed`, the lease released, and the next run
    after the back-off for this many failures in a row (with `backoff=None`, one interval on:
    the round ran, part of it failed). False when the lease had been lost."""

    def next_run(interval: float, before: int, at: datetime) -> tuple[datetime, int]:
        failures = before + 1
        if backoff is None:
            return at + timedelta(seconds=interval), failures
        return at + backoff.delay(failures), failures

    return _end(
        store,
        lease,
        status="failed",
        error=error[:ERROR_MAX],
        summary=summary,
        next_run=next_run,
        now=now,
    )


class Renewer:
    """Renews a lease every `every` seconds in a thread while a run goes on; sets `lost`
    (and calls `on_lost`) when the lease is no longer the holder's. Use it as a `with` block."""

    def __init__(
        self,
        store: Store,
        lease: Lease,
        *,
        extend: timedelta,
        every: float,
        now: Clock = utcnow,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
        self.extend = extend
        self.every = every
        self.now = now
        self.on_lost = on_lost
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{lease.task}", daemon=True)

    def _loop(self) -> None:
        while not self._done.wait(self.every):
            try:
                ok = renew(self.store, self.lease, extend=self.extend, now=self.now)
            except Exception:  # a database hiccup: try again at the next beat
                continue
            if not ok:
                self.lost.set()
                if self.on_lost is not None:
                    self.on_lost()
                return

    def __enter__(self) -> Renewer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=max(5.0, self.every))


@dataclass(frozen=True)
class RunOutcome:
    """What `run_task` did: the run's id, how it ended, its error and summary."""

    run_id: int
    status: str
    error: str | None = None
    summary: dict[str, Any] | None = None


def run_task(
    store: Store,
    task: str,
    holder: str,
    work: Callable[[threading.Event], Mapping[str, Any] | None],
    *,
    lease: timedelta = DEFAULT_LEASE,
    backoff: Backoff = Backoff(),
    now: Clock = utcnow,
    stop: threading.Event | None = None,
    force: bool = False,
) -> RunOutcome | None:
    """Claim `task` and, if this node won it, run `work(stop)` while the lease is renewed
    (every third of `lease`); record how it ended. `work` returns the run's summary (or
    None); it may raise `TaskProblem` (recorded failed, next run at the usual interval) or
    anything else (recorded failed, next run after the back-off), and return `IDLE` when it
    found nothing to do (no record; the outcome's status is `idle`). The event it gets is set
    when `stop` is, or when the lease is lost. None when the task was not due (`force` runs it
    anyway) or another node holds it."""
    held = claim(store, task, holder, lease=lease, now=now, force=force)
    if held is None:
        return None
    quit_run = threading.Event()
    watcher: threading.Thread | None = None
    if stop is not None:
        outer = stop

        def relay() -> None:
            while not quit_run.is_set():
                if outer.wait(0.2):
                    quit_run.set()

        watcher = threading.Thread(target=relay, name=f"stop-{task}", daemon=True)
        watcher.start()
    every = max(0.05, lease.total_seconds() / 3)
    try:
        with Renewer(store, held, extend=lease, every=every, now=now, on_lost=quit_run.set):
            try:
                summary = work(quit_run)
            except TaskProblem as exc:
                fail(store, held, str(exc), summary=exc.summary, backoff=None, now=now)
                return RunOutcome(held.run_id, "failed", str(exc), exc.summary)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                detail = traceback.format_exc(limit=8)
                fail(store, held, f"{error}\n{detail}", summary=None, backoff=backoff, now=now)
                return RunOutcome(held.run_id, "failed", error)
        if summary is IDLE:
            if not finish(store, held, now=now, idle=True):
                return RunOutcome(held.run_id, "failed", _lost(held, None))
            return RunOutcome(held.run_id, "idle")
        data = dict(summary) if summary is not None else None
        if not finish(store, held, summary=data, now=now):
            return RunOutcome(held.run_id, "failed", _lost(held, None), data)
        return RunOutcome(held.run_id, "ok", None, data)
    finally:
        quit_run.set()
        if watcher is not None:
            watcher.join(timeout=1)


def request_run(store: Store, task: str, actor: str, *, now: Clock = utcnow) -> datetime:
    """Make `task` due at once (it runs when its lease is free, on whichever node polls first);
    audited. Returns the new next-run time; TaskNotFound for an unknown task."""
    at = now()
    with store.session() as session:
        result = session.execute(
            update(TaskLease)
            .where(TaskLease.task == task)
            .values(next_run_at=at, updated_at=at)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            raise TaskNotFound(f"no scheduled task {task!r}")
        audit.record(
            session,
            actor=actor,
            action="task.run_now",
            object_type="task",
            object_id=task,
            details={"next_run_at": at.isoformat()},
        )
    return at


def next_run_at(store: Store, task: str) -> datetime | None:
    """When `task` is due next; None when it has no row."""
    with store.session() as session:
        row = session.get(TaskLease, task)
        return row.next_run_at if row is not None else None


def recent_runs(store: Store, task: str, *, limit: int = 10) -> list[RunInfo]:
    """The task's last runs, newest first."""
    with store.session() as session:
        rows = session.scalars(
            select(TaskRun).where(TaskRun.task == task).order_by(TaskRun.id.desc()).limit(limit)
        )
        return [_run_info(r) for r in rows]


def task_states(store: Store, *, runs: int = 5) -> list[TaskState]:
    """Every scheduled task with its schedule, lease and last `runs` runs, by name: two
    queries however many tasks there are (the runs ranked per task by a window function)."""
    with store.session() as session:
        rows = list(session.scalars(select(TaskLease).order_by(TaskLease.task)))
        by_task: dict[str, list[RunInfo]] = {r.task: [] for r in rows}
        if runs > 0 and rows:
            rank = (
                func.row_number()
                .over(partition_by=TaskRun.task, order_by=TaskRun.id.desc())
                .label("rank")
            )
            ranked = select(TaskRun.id, rank).subquery()
            recent = session.scalars(
                select(TaskRun)
                .join(ranked, ranked.c.id == TaskRun.id)
                .where(ranked.c.rank <= runs)
                .order_by(TaskRun.task, TaskRun.id.desc())
            )
            for run in recent:
                if run.task in by_task:
                    by_task[run.task].append(_run_info(run))
        return [
            TaskState(
                task=r.task,
                interval_seconds=r.interval_seconds,
                next_run_at=r.next_run_at,
                lease_holder=r.lease_holder,
                lease_until=r.lease_until,
                failures=r.failures,
                looked_at=r.updated_at,
                runs=by_task[r.task],
            )
            for r in rows
        ]
