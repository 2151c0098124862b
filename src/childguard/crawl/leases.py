# Owns which crawl worker crawls which watch: one lease per watch, kept by the scheduler's
# leases (`childguard.jobs.schedule`, the only writer of task_lease and task_run).
"""Several crawl workers share the watches through the store.

Each watch has a scheduled task `crawl-watch:NAME` (interval: its re-check interval). A worker
takes a watch with `claim_watch`: the scheduler's guarded UPDATE, so of any number of workers
on any number of machines sharing one database exactly one wins, and no worker takes a watch
whose lease is live. Once it holds the lease it checks again that the watch is still due (its
last run, as `childguard crawl run --due` decides), so a watch another worker has just crawled
is released untouched. The winner renews the lease while its crawl runs (`WatchLease.renew`,
called by `run_crawl` as it waits on the crawl process), then records the run (`done`: the next
crawl one re-check interval on; `failed`: backed off). A worker that dies stops renewing; its
crawl process dies with it (`childguard.forksafe.die_with_parent`), and once the lease has
expired the next worker that looks takes the watch over, the dead worker's run recorded as
failed ("the lease of W expired").

A watch named on the command line is claimed with `force` (due or not), but still never while
another worker holds it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from childguard.crawl.watch import Watch
from childguard.crawl.watchstore import is_due
from childguard.jobs import schedule
from childguard.store.base import utcnow
from childguard.store.db import Store

TASK_PREFIX = "crawl-watch:"
DEFAULT_LEASE = timedelta(minutes=2)


def watch_task(name: str) -> str:
    """The scheduled task that holds the lease of watch `name`."""
    return TASK_PREFIX + name


def worker_name() -> str:
    """This worker's name in leases and runs: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class WatchLease:
    """A held watch: renew it while the crawl runs, then record how the crawl ended."""

    store: Store
    watch: Watch
    lease: schedule.Lease
    extend: timedelta
    lost: bool = field(default=False)

    def renew(self) -> bool:
        """Hold the watch `extend` more; False (and `lost`) once another worker has it. A
        database hiccup counts as held: the next beat tries again."""
        if self.lost:
            return False
        try:
            ok = schedule.renew(self.store, self.lease, extend=self.extend)
        except Exception:
            return True
        self.lost = not ok
        return ok

    def done(self, summary: dict[str, Any] | None = None) -> bool:
        return schedule.finish(self.store, self.lease, summary=summary)

    def failed(self, error: str, summary: dict[str, Any] | None = None) -> bool:
        return schedule.fail(self.store, self.lease, error, summary=summary)


def claim_watch(
    store: Store,
    watch: Watch,
    holder: str,
    *,
    lease: timedelta = DEFAULT_LEASE,
    force: bool = False,
) -> WatchLease | None:
    """Take `watch` for one crawl by `holder`, or None: another worker holds it, or (without
    `force`) it is no longer due, because some worker crawled it since the caller looked.
    Whether a watch is due is its last run's time (`watchstore.due_watches`), read again once
    the lease is held; the lease itself only makes sure one worker crawls it at a time."""
    task = watch_task(watch.name)
    schedule.ensure_task(store, task, timedelta(seconds=watch.recheck_every))
    held = schedule.claim(store, task, holder, lease=lease, force=True)
    if held is None:
        return None
    if not force and not is_due(store, watch):
        schedule.finish(store, held, idle=True)  # released, and no run recorded
        return None
    return WatchLease(store, watch, held, lease)


def holder_of(store: Store, name: str) -> str | None:
    """The worker that holds watch `name` now, or None."""
    now = utcnow()
    for state in schedule.task_states(store, runs=0):
        if state.task == watch_task(name) and state.held(now):
            return state.lease_holder
    return None
