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
  `ALERT_SECONDS`: alerts are queued for new sightings, and delivered by email when SMTP is
  configured (`CHILDGUARD_SMTP_HOST`); without it, only to organisations with a webhook and
  no email address. One worker of a host runs it at a time.

Work is never done twice by two workers: jobs and deliveries are claimed atomically in the
store, and a `singleton` task holds a file lock while it runs. A task that raises is logged
and runs again at its next interval; it never ends its thread. `stop()` returns within a few
seconds: a running job stops at its next progress report and goes back to the queue.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from childguard import config
from childguard.alerts.dispatch import AlertTransport, queue_and_deliver
from childguard.alerts.email import SmtpSettings
from childguard.alerts.subscriptions import deliver_due, derive_secret
from childguard.jobs import JobRunner
from childguard.log import get_logger
from childguard.netguard.fetch import check_fetchable
from childguard.service.config import Settings
from childguard.store.db import Store
from childguard.store.protect_models import Organisation

log = get_logger(__name__)

ALERT_SECONDS = 60.0
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
    stops, for runs that take long. `on_stop` is called when the scheduler stops. A
    `singleton` task runs in one worker of a host at a time."""

    name: str
    interval: float
    run: Callable[[threading.Event], object]
    singleton: bool = False
    on_stop: Callable[[], None] | None = None
    runs: int = field(default=0, init=False)
    failures: int = field(default=0, init=False)


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
    """Runs `tasks`, one thread each. `start()`, then `stop()`."""

    def __init__(self, tasks: list[PeriodicTask], *, lock_dir: Path) -> None:
        self.tasks = {t.name: t for t in tasks}
        self.lock_dir = lock_dir
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for task in self.tasks.values():
            thread = threading.Thread(
                target=self._loop, args=(task,), name=f"scheduler-{task.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        log.info("scheduler.started", tasks=list(self.tasks), pid=os.getpid())

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

    def run_now(self, name: str) -> None:
        """Run one task once in the calling thread (as its thread would)."""
        self._once(self.tasks[name])

    def _loop(self, task: PeriodicTask) -> None:
        while not self._stop.is_set():
            self._once(task)
            if self._stop.wait(task.interval):
                return

    def _once(self, task: PeriodicTask) -> None:
        try:
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


def build_scheduler(context: SchedulerContext) -> Scheduler:
    """A scheduler with every registered task."""
    tasks = [t for f in _FACTORIES.values() if (t := f(context)) is not None]
    return Scheduler(tasks, lock_dir=data_dir(context.settings))


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


def _alerts_task(context: SchedulerContext) -> PeriodicTask:
    def run(_: threading.Event) -> None:
        smtp = SmtpSettings.from_env() if os.environ.get("CHILDGUARD_SMTP_HOST") else None
        with context.store.session() as session:
            organisations = None
            if smtp is None:
                organisations = [
                    o for o in session.query(Organisation).all() if o.webhook_url and not o.emails
                ]
            queue_and_deliver(session, AlertTransport(smtp=smtp), organisations=organisations)

    return PeriodicTask("alerts", ALERT_SECONDS, run, singleton=True)


register_task("jobs", _jobs_task)
register_task("webhooks", _webhooks_task)
register_task("alerts", _alerts_task)
