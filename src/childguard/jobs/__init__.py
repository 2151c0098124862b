"""Background jobs: a queue in the store (`queue`, the only writer of the `job` table), a
registry of job kinds (`registry`), a runner that claims and runs them (`runner`), and the
kinds built in (`bank_import`). The service's scheduler runs a `JobRunner`; later kinds add
themselves with `register(name, handler)`."""

from childguard.jobs import bank_import
from childguard.jobs.queue import (
    MAX_ATTEMPTS,
    STALE_AFTER,
    JobEnded,
    JobInfo,
    JobLost,
    JobNotFound,
    cancel,
    claim,
    enqueue,
    fail,
    finish,
    get_job,
    heartbeat,
    list_jobs,
    progress,
    release,
)
from childguard.jobs.registry import (
    JobContext,
    JobFailed,
    JobKind,
    JobStopped,
    get_kind,
    kinds,
    register,
)
from childguard.jobs.runner import JobRunner, job_dir, worker_name

__all__ = [
    "MAX_ATTEMPTS",
    "STALE_AFTER",
    "JobContext",
    "JobEnded",
    "JobFailed",
    "JobInfo",
    "JobKind",
    "JobLost",
    "JobNotFound",
    "JobRunner",
    "JobStopped",
    "bank_import",
    "cancel",
    "claim",
    "enqueue",
    "fail",
    "finish",
    "get_job",
    "get_kind",
    "heartbeat",
    "job_dir",
    "kinds",
    "list_jobs",
    "progress",
    "register",
    "release",
    "worker_name",
]
