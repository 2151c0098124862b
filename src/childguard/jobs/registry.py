# Owns the registry of job kinds: the name of each kind and the function that runs it.
"""Job kinds. A kind is a name and a plain function `handler(ctx) -> result dict`; a module
adds one with `register(name, handler)` and the runner finds it here, so a new kind needs no
change to the runner.

A handler reports progress with `ctx.progress(done, total)` (which also raises `JobStopped`
when the job was cancelled or the worker is stopping: the handler lets it pass), finds its
files under `ctx.workdir`, and ends by returning its result or raising: `JobFailed` for a
failure a retry would not fix (the message is the job's error), anything else for one that
it might (the job is tried again, up to its attempts).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from childguard.errors import ChildguardError
from childguard.jobs.queue import JobInfo
from childguard.store.db import Store


class JobFailed(ChildguardError):
    """The job cannot succeed as asked; its message is the job's error. Not retried."""


class JobStopped(Exception):
    """The job was cancelled, or taken from this worker, or the worker is stopping."""


@dataclass
class JobContext:
    """What a handler gets: its job, the store, its own directory, and progress reporting."""

    job: JobInfo
    store: Store
    workdir: Path
    report: Callable[[int, int | None], None]

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, done: int, total: int | None = None) -> None:
        """Record progress; JobStopped when the handler must stop."""
        self.report(done, total)


Handler = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class JobKind:
    name: str
    handler: Handler
    description: str = ""


_KINDS: dict[str, JobKind] = {}


def register(name: str, handler: Handler, description: str = "") -> JobKind:
    """Add (or replace) the kind `name`."""
    if not name or len(name) > 32:
        raise ValueError(f"a job kind's name is 1-32 characters: {name!r}")
    kind = JobKind(name, handler, description)
    _KINDS[name] = kind
    return kind


def get_kind(name: str) -> JobKind:
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown job kind {name!r}; kinds: {', '.join(sorted(_KINDS))}") from None


def kinds() -> list[str]:
    """The names of the registered kinds."""
    return sorted(_KINDS)
