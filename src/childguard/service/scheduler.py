# Owns what runs beside the API in each worker: periodic tasks, among them the job runner.
"""The scheduler of one service worker: a thread per periodic task, started and stopped with
the app (`ServiceState.start` / `close`).

Tasks come from a registry (`register_task(name, factory)`; the factory gets the
`SchedulerContext` and returns a `PeriodicTask`), so a later kind of work adds itself without
editing this module. Built in:

- `jobs`: claims and runs queued background jobs of every registered kind
  (`childguard.jobs.JobRunner`), every `job_poll_seconds`; then removes the files of jobs
  that ended;
- `webhooks`: sends due webhook deliveries (`childguard.alerts.subscriptions.deliver_due`),
  every `webhook_poll_seconds`, under the service's address policy;
- `alerts`: an alert round (`childguard.alerts.dispatch.queue_and_deliver`) every
  `alert_poll_seconds`: alerts are queued for new sightings (and the album monitors' view
  spikes), and delivered at once or in each organisation's daily digest, by email when SMTP
  is configured (`CHILDGUARD_SMTP_HOST`); without it, only to organisations with a webhook
  and no email address. The round's summary counts what was queued, sent, retried and given
  up, naming each alert that failed with its last error; a round where an alert failed is
  recorded as failed.

Work is never done twice by two workers or two nodes: jobs and deliveries are claimed
atomically in the store, and a `singleton` task runs under a lease in the store
(`childguard.jobs.schedule`): the worker whose guarded UPDATE wins holds it, renews it while
the run goes on, and records the run (`task_run`: node, start, end, status, error, summary).
The next run is due `interval` after the last across every node sharing the store; after a
failure it backs off (`task_retry_seconds`, doubling up to `task_retry_max_seconds`). A
worker that dies mid-run stops renewing, and its lease (`task_lease_seconds`) expires before
another takes the task over. Each worker looks at the schedule at least every
`scheduler_poll_seconds`, so a "run now" from the supervisors' page (`/tasks`) starts within
that time. A scheduler without a store (tests) falls back to a file lock per host.

A task that raises is logged and runs again at its next interval (a singleton: after its
back-off); it never ends its thread. `stop()` returns within a few seconds: a running job
stops at its next progress report and goes back to the queue.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from childguard import config
from childguard.alerts.dispatch import AlertRound, AlertTransport, queue_and_deliver
from childguard.alerts.email import SmtpSettings
from childguard.alerts.subscriptions import deliver_due, derive_secret
from childguard.jobs import JobRunner, worker_name
from childguard.jobs import schedule as task_schedule
from childguard.log import get_logger
from childguard.netguard.fetch import check_fetchable
from childguard.service.config import Settings
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.protect_models import Organisation

log = get_logger(__name__)

STOP_SECONDS = 5.0


def data_dir(settings: Settings) -> Path:
    """The service's data directory."""
    return Path(settings.data_dir) if settings.data_dir is not None else config.data_dir()


def jobs_dir(settings: Settings) -> Path:
    """Where jobs keep their files: `<data dir>/jobs/<id>/`."""
    return data_dir(settings) / "jobs"


@dataclass(frozen=True)
class SchedulerContext:
    """What task factories get: the worker's store, settings and secret key."""

    store: Store
    settings: Settings
    secret_key: bytes


@dataclass
class PeriodicTask:
    """`run(stop)` every `interval` seconds (first at start); `stop` is set when the scheduler
    stops (or a singleton's lease is lost), for runs that take long. `on_stop` is called when
    the scheduler stops. A `singleton` task runs in one worker of all the nodes sharing the
    store at a time, under a lease; what its `run` returns, when a mapping, is recorded as the
    run's summary (`childguard.jobs.schedule.IDLE`: it found nothing to do, and leaves no
    record), and it may raise `childguard.jobs.schedule.TaskProblem` for a round that ran but
    in part failed."""

    name: str
    interval: float
    run: Callable[[threading.Event], object]
    singleton: bool = False
    on_stop: Callable[[], None] | None = None
    runs: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)


@dataclass(frozen=True)
class LeasePolicy:
    """How singletons hold their lease and back off after a failure."""

    lease: timedelta = task_schedule.DEFAULT_LEASE
    backoff: task_schedule.Backoff = field(default_factory=task_schedule.Backoff)
    poll_seconds: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> LeasePolicy:
        return cls(
            lease=timedelta(seconds=settings.task_lease_seconds),
            backoff=task_schedule.Backoff(
                base=timedelta(seconds=settings.task_retry_seconds),
                cap=timedelta(seconds=settings.task_retry_max_seconds),
            ),
            poll_seconds=settings.scheduler_poll_seconds,
        )


TaskFactory = Callable[[SchedulerContext], PeriodicTask | None]
_FACTORIES: dict[str, TaskFactory] = {}


def register_task(name: str, factory: TaskFactory) -> None:
    """Add (or replace) a periodic task; `factory` may return None to leave it out (say, when
    a setting turns it off)."""
    _FACTORIES[name] = factory


def task_names() -> list[str]:
    return list(_FACTORIES)


@contextlib.contextmanager
def _host_lock(path: Path) -> Iterator[bool]:
    """Whether this process holds the lock at `path` (not waiting for it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Scheduler:
    """Runs `tasks`, one thread each. `start()`, then `stop()`. With a `store`, singletons run
    under its leases as `node` (default: a name unique to this process), on the clock `now`;
    without one, under a file lock in `lock_dir`."""

    def __init__(
        self,
        tasks: list[PeriodicTask],
        *,
        lock_dir: Path,
        store: Store | None = None,
        policy: LeasePolicy | None = None,
        node: str | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.tasks = {t.name: t for t in tasks}
        self.lock_dir = lock_dir
        self.store = store
        self.policy = policy or LeasePolicy()
        self.node = node or worker_name()
        self.now = now
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._known: set[str] = set()

    def start(self) -> None:
        for task in self.tasks.values():
            thread = threading.Thread(
                target=self._loop, args=(task,), name=f"scheduler-{task.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("scheduler.started", tasks=list(self.tasks), pid=os.getpid(), node=self.node)

    def stop(self, timeout: float = STOP_SECONDS) -> bool:
        """Stop every task; True when all threads ended within `timeout`."""
        self._stop.set()
        for task in self.tasks.values():
            if task.on_stop is not None:
                try:
                    task.on_stop()
                except Exception as exc:
                    log.warning("scheduler.stop_failed", task=task.name, error=str(exc))
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            log.warning("scheduler.still_running", threads=alive)
        return not alive

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def run_now(self, name: str) -> task_schedule.RunOutcome | None:
        """Run one task once in the calling thread, due or not (a singleton: unless another
        worker holds its lease; then None)."""
        return self._once(self.tasks[name], force=True)

    def _leased(self, task: PeriodicTask) -> bool:
        return task.singleton and self.store is not None

    def _loop(self, task: PeriodicTask) -> None:
        while not self._stop.is_set():
            self._once(task)
            if self._stop.wait(self._pause(task)):
                return

    def _pause(self, task: PeriodicTask) -> float:
        """Seconds until the task's thread looks again: its interval, or for a singleton the
        time until it is due, at most `poll_seconds` (another node may run it, or a
        supervisor ask for it)."""
        if not self._leased(task) or self.store is None:
            return task.interval
        longest = min(task.interval, self.policy.poll_seconds)
        try:
            due = task_schedule.next_run_at(self.store, task.name)
        except Exception:  # the store is unreachable: look again later
            return longest
        if due is None:
            return longest
        return max(0.05, min(longest, (due - self.now()).total_seconds()))

    def _once(self, task: PeriodicTask, *, force: bool = False) -> task_schedule.RunOutcome | None:
        try:
            if self._leased(task):
                return self._once_leased(task, force=force)
            if task.singleton:
                with _host_lock(self.lock_dir / f"scheduler-{task.name}.lock") as held:
                    if held:
                        task.run(self._stop)
            else:
                task.run(self._stop)
            task.runs += 1
        except Exception as exc:  # logged; the task runs again at its next interval
            task.failures += 1
            log.error("scheduler.task_failed", task=task.name, error=f"{type(exc).__name__}: {exc}")
        return None

    def _once_leased(self, task: PeriodicTask, *, force: bool) -> task_schedule.RunOutcome | None:
        assert self.store is not None
        if task.name not in self._known:
            interval = timedelta(seconds=task.interval)
            task_schedule.ensure_task(self.store, task.name, interval, now=self.now)
            self._known.add(task.name)

        def work(stop: threading.Event) -> Mapping[str, Any] | None:
            result = task.run(stop)
            return result if isinstance(result, Mapping) else None

        outcome = task_schedule.run_task(
            self.store,
            task.name,
            self.node,
            work,
            lease=self.policy.lease,
            backoff=self.policy.backoff,
            now=self.now,
            stop=self._stop,
            force=force,
        )
        if outcome is None:
            return None
        task.runs += 1
        if outcome.status == "failed":
            task.failures += 1
            log.error("scheduler.task_failed", task=task.name, error=outcome.error)
        return outcome


def build_scheduler(context: SchedulerContext) -> Scheduler:
    """A scheduler with every registered task."""
    tasks = [t for f in _FACTORIES.values() if (t := f(context)) is not None]
    return Scheduler(
        tasks,
        lock_dir=data_dir(context.settings),
        store=context.store,
        policy=LeasePolicy.from_settings(context.settings),
    )


# ---------------------------------------------------------------------- built-in tasks


def _jobs_task(context: SchedulerContext) -> PeriodicTask:
    runner = JobRunner(
        context.store,
        jobs_dir(context.settings),
        heartbeat_seconds=min(5.0, max(0.5, context.settings.job_poll_seconds)),
    )

    def run(_: threading.Event) -> None:
        runner.run_pending()
        runner.sweep()

    return PeriodicTask("jobs", context.settings.job_poll_seconds, run, on_stop=runner.stop)


def _webhooks_task(context: SchedulerContext) -> PeriodicTask:
    settings = context.settings

    def check(url: str) -> None:
        check_fetchable(url, allow_private=settings.allow_private_fetch)

    def run(stop: threading.Event) -> None:
        deliver_due(
            context.store,
            lambda sub_id: derive_secret(context.secret_key, sub_id),
            check_url=check,
            should_stop=stop.is_set,
        )

    return PeriodicTask("webhooks", settings.webhook_poll_seconds, run)


def alert_summary(done: AlertRound) -> dict[str, Any]:
    """What an alert round did, for its run record: counts, and each alert that failed (for
    good, or until its retry) with its last error."""
    summary: dict[str, Any] = {"queued": len(done.queued)}
    report = done.delivery
    if report is not None:
        summary.update(
            sent=len(report.sent),
            digests=report.digests,
            held=report.held,
            failed=[{"alert": i, "error": e} for i, e in report.failed],
            retrying=[
                {"alert": i, "error": e, "next_try_at": at.isoformat()}
                for i, e, at in report.retrying
            ],
            no_contact=[{"organisation": o, "held": n} for o, n in report.no_contact],
        )
    return summary


def alert_round(store: Store, transport: AlertTransport) -> Mapping[str, Any]:
    """One alert round (`queue_and_deliver`): its summary (`IDLE` when it queued and sent
    nothing and nothing failed); TaskProblem naming the alerts that failed this round, with
    the summary, when any did."""
    with store.session() as session:
        organisations = None
        if transport.smtp is None:
            organisations = [
                o for o in session.query(Organisation).all() if o.webhook_url and not o.emails
            ]
        done = queue_and_deliver(session, transport, organisations=organisations)
        summary = alert_summary(done)
    failures = summary.get("failed", []) + summary.get("retrying", [])
    busy = summary["queued"] or summary.get("sent") or summary.get("digests") or failures
    if not busy:
        return task_schedule.IDLE
    if failures:
        first = failures[0]
        raise task_schedule.TaskProblem(
            f"{len(failures)} alert(s) could not be delivered; alert {first['alert']}: "
            f"{first['error']}",
            summary,
        )
    return summary


def _alerts_task(context: SchedulerContext) -> PeriodicTask:
    def run(_: threading.Event) -> Mapping[str, Any]:
        smtp = SmtpSettings.from_env() if os.environ.get("CHILDGUARD_SMTP_HOST") else None
        return alert_round(context.store, AlertTransport(smtp=smtp))

    return PeriodicTask("alerts", context.settings.alert_poll_seconds, run, singleton=True)


register_task("jobs", _jobs_task)
register_task("webhooks", _webhooks_task)
register_task("alerts", _alerts_task)
