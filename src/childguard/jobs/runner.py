# Owns running queued jobs: claim one, beat while its handler runs, record how it ended.
"""`JobRunner` takes queued jobs of the registered kinds (`childguard.jobs.registry`) and runs
them one at a time in the calling thread, with a heart-beat thread beside the handler. It is
what the service's scheduler calls, and it can be used alone (tests, scripts).

Each job gets a directory `workdir/<id>/` (its upload, scratch files); it is removed when the
job ends. A handler that raises `JobFailed` fails the job; any other error is retried while
the job has attempts left. When the job is cancelled, or taken over after this worker stalled,
the handler is stopped at its next progress report. `stop()` makes a running handler stop at
its next report too, and gives its job back to the queue for another worker.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from childguard.jobs import queue
from childguard.jobs.queue import JobInfo, JobLost
from childguard.jobs.registry import JobContext, JobFailed, JobStopped, get_kind, kinds
from childguard.log import get_logger
from childguard.store.db import Store

log = get_logger(__name__)


def worker_name() -> str:
    """A name for this worker that no other process or thread shares."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def job_dir(workdir: Path, job_id: int) -> Path:
    """The directory of one job's files."""
    return workdir / str(job_id)


class JobRunner:
    """Claims and runs jobs of `kind_names` (default: every registered kind)."""

    def __init__(
        self,
        store: Store,
        workdir: Path,
        *,
        kind_names: Sequence[str] | None = None,
        worker: str | None = None,
        heartbeat_seconds: float = 5.0,
        stale_after: timedelta = queue.STALE_AFTER,
        max_attempts: int = queue.MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self.workdir = Path(workdir)
        self.kind_names = list(kind_names) if kind_names is not None else None
        self.worker = worker or worker_name()
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after = stale_after
        self.max_attempts = max_attempts
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Stop: a running handler stops at its next progress report."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def run_pending(self, limit: int | None = None) -> list[JobInfo]:
        """Run queued jobs until there are none (or `limit` ran, or `stop()`); the jobs as
        they ended."""
        ran: list[JobInfo] = []
        while not self.stopping and (limit is None or len(ran) < limit):
            job = self.run_one()
            if job is None:
                break
            ran.append(job)
        return ran

    def run_one(self) -> JobInfo | None:
        """Claim one job and run it; the job as it is afterwards, None when none was queued."""
        job = queue.claim(
            self.store,
            self.worker,
            self.kind_names if self.kind_names is not None else kinds(),
            stale_after=self.stale_after,
            max_attempts=self.max_attempts,
        )
        if job is None:
            return None
        log.info("job.start", job=job.id, kind=job.kind, attempt=job.attempts)
        self._run(job)
        ended = queue.get_job(self.store, job.id)
        if ended.ended:
            shutil.rmtree(job_dir(self.workdir, job.id), ignore_errors=True)
        log.info("job.end", job=job.id, kind=job.kind, status=ended.status)
        return ended

    def _run(self, job: JobInfo) -> None:
        lost = threading.Event()
        beating = threading.Event()

        def beat() -> None:
            while not beating.wait(self.heartbeat_seconds):
                try:
                    queue.heartbeat(self.store, job.id, self.worker)
                except JobLost:
                    lost.set()
                    return
                except Exception as exc:  # a store hiccup: the next beat tries again
                    log.warning("job.heartbeat_failed", job=job.id, error=str(exc))

        def report(done: int, total: int | None) -> None:
            if lost.is_set() or self.stopping:
                raise JobStopped()
            try:
                queue.progress(self.store, job.id, self.worker, done, total)
            except JobLost:
                lost.set()
                raise JobStopped() from None

        ctx = JobContext(job, self.store, job_dir(self.workdir, job.id), report)
        thread = threading.Thread(target=beat, name=f"job-{job.id}-heartbeat", daemon=True)
        thread.start()
        try:
            result = self._handle(ctx)
        except JobStopped:
            if not lost.is_set():
                queue.release(self.store, job.id, self.worker)
            return
        except JobFailed as exc:
            queue.fail(self.store, job.id, self.worker, str(exc))
            return
        except Exception as exc:
            log.warning("job.attempt_failed", job=job.id, error=str(exc))
            queue.fail(
                self.store,
                job.id,
                self.worker,
                f"{type(exc).__name__}: {exc}",
                retry=True,
                max_attempts=self.max_attempts,
            )
            return
        finally:
            beating.set()
            thread.join(timeout=5)
        queue.finish(self.store, job.id, self.worker, result)

    def _handle(self, ctx: JobContext) -> dict[str, Any]:
        try:
            kind = get_kind(ctx.job.kind)
        except ValueError as exc:
            raise JobFailed(str(exc)) from None
        return kind.handler(ctx)

    def sweep(self) -> int:
        """Remove the directories of jobs that have ended (cancelled while queued, failed
        after their worker died); how many went."""
        if not self.workdir.is_dir():
            return 0
        removed = 0
        for child in self.workdir.iterdir():
            if not child.name.isdigit():
                continue
            try:
                ended = queue.get_job(self.store, int(child.name)).ended
            except queue.JobNotFound:  # its job may be queued but not yet committed
                continue
            if ended:
                shutil.rmtree(child, ignore_errors=True)
                removed += 1
        return removed
