# Owns what one service process holds: the store, the matcher that follows it, the pipeline.
"""The state of one service process.

The matcher is opened in a background thread when the app starts (`/status` answers 503
until it is ready), its saved indexes memory-mapped (every worker shares their pages), then
follows the store by entry ids: every `refresh_seconds` a thread
syncs it (signals added by other processes or workers), and a write in this process syncs it
at once (`changed()`), so a signal added through this API is matchable on the next call.
Queries run side by side; a sync waits for them and holds new ones back (`SharedLock`), so
no query sees an index half-way through a sync. On
shutdown the indexes are saved (one process at a time), so the next start syncs only what
was added after.

Every batch the matcher answers is counted by `flood` (`childguard.service.flood`): a bank
past its match cap is quarantined as the query that took it there ends, and this process's
matcher is refreshed before that query returns. Each refresh updates the index gauges of
`childguard.service.metrics`.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from childguard.alerts.subscriptions import Answer, Publisher
from childguard.config import index_dir
from childguard.log import get_logger
from childguard.matcher import Matcher
from childguard.pipeline import Pipeline
from childguard.service import metrics
from childguard.service.config import Settings
from childguard.service.flood import FloodControl
from childguard.service.scheduler import Scheduler, SchedulerContext, build_scheduler
from childguard.service.secret_key import service_secret_key
from childguard.store import Store, open_store

log = get_logger(__name__)
T = TypeVar("T")


class IndexNotReady(Exception):
    """The matcher's indexes are still loading."""


class SharedLock:
    """Many readers (queries) or one writer (a sync). A waiting writer goes before readers
    that arrive after it, so a steady stream of queries cannot hold off the sync."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class ServiceState:
    """Store, matcher and pipelines of one process. `start()` then `close()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store = open_store(settings.db_url)
        self._matcher: Matcher | None = None
        self._lock = SharedLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.load_error: str | None = None
        self.last_refresh: float = 0.0
        # Hashing alone (no matcher): `/h/hash`.
        self.hasher = Pipeline(None, robust=False)
        # Match events to webhook subscribers, and the scheduler beside the API.
        self.events = Publisher(self.store)
        self.scheduler: Scheduler | None = None
        self._secret_key: bytes | None = None
        # Matches per bank per minute; banks past their cap are quarantined (`flood`).
        self.flood = FloodControl(self.store, settings.bank_match_cap_per_minute)
        self._queries = threading.local()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name="matcher-follow", daemon=True)
        self._thread.start()
        if self.settings.scheduler_enabled:
            context = SchedulerContext(self.store, self.settings, self.secret_key())
            self.scheduler = build_scheduler(context)
            self.scheduler.start()

    def secret_key(self) -> bytes:
        """The service's secret key (`service.secret_key`), read or made on first use."""
        if self._secret_key is None:
            self._secret_key = service_secret_key(self.settings)
        return self._secret_key

    def close(self) -> None:
        """Stop following, save the indexes (one process at a time) and close the store."""
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock.exclusive():
            if self._matcher is not None:
                try:
                    self._save(self._matcher)
                except OSError as exc:  # the next start syncs from the older saved index
                    log.warning("matcher.save_failed", error=str(exc))
        self.store.close()
        metrics.process_exited()

    def _save(self, matcher: Matcher) -> None:
        base = index_dir(str(self.settings.index_dir) if self.settings.index_dir else None)
        with (base / ".save.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            matcher.save()

    def _follow(self) -> None:
        try:
            matcher = Matcher(self.store, index_base=self.settings.index_dir, mmap=True)
        except Exception as exc:  # reported by /status; the process keeps serving health
            self.load_error = str(exc)
            log.error("matcher.load_failed", error=str(exc))
            return
        matcher.on_outcomes = lambda records, outcomes: self.flood.observe(
            records, outcomes, matcher.banks
        )
        with self._lock.exclusive():
            self._matcher = matcher
            self.last_refresh = time.monotonic()
            self._refreshed(matcher)
        log.info("matcher.ready", sizes={n: len(i.index) for n, i in matcher.indexes.items()})
        while not self._stop.wait(self.settings.refresh_seconds):
            try:
                self.flood.settle()
                self.refresh()
            except Exception as exc:  # a store hiccup must not end the follower
                log.warning("matcher.refresh_failed", error=str(exc))

    # ------------------------------------------------------------------ matching

    @property
    def ready(self) -> bool:
        return self._matcher is not None

    def refresh(self) -> None:
        """Sync the matcher with the store now."""
        with self._lock.exclusive():
            if self._matcher is not None:
                self._matcher.refresh()
                self.last_refresh = time.monotonic()
                self._refreshed(self._matcher)

    def _refreshed(self, matcher: Matcher) -> None:
        quarantined = self.flood.follow(matcher.banks)
        metrics.observe_index({n: len(i.index) for n, i in matcher.indexes.items()}, quarantined)

    def changed(self) -> None:
        """This process wrote to the banks: sync before the next query."""
        self.refresh()

    @contextmanager
    def matcher(self) -> Iterator[Matcher]:
        """The matcher, shared with other queries and never in the middle of a sync;
        IndexNotReady while it loads. Banks the query took past their match cap are
        quarantined when the outermost `matcher()` of the thread ends, before it returns."""
        depth = getattr(self._queries, "depth", 0)
        self._queries.depth = depth + 1
        try:
            with self._lock.shared():
                if self._matcher is None:
                    raise IndexNotReady(self.load_error or "the index is loading")
                yield self._matcher
        finally:
            self._queries.depth = depth
        if depth == 0 and self.flood.pending and self.flood.settle():
            self.refresh()

    def with_matcher(self, fn: Callable[[Matcher], T]) -> T:
        with self.matcher() as matcher:
            return fn(matcher)

    def matched(self, answers: Iterable[Answer]) -> None:
        """Answers this process gave, as (query signals, outcome): those with matches are
        published as `match` events to webhook subscribers. Never fails the answer."""
        try:
            self.events.matched(answers)
        except Exception as exc:  # the answer stands; the event is lost, and logged
            log.warning("events.publish_failed", error=f"{type(exc).__name__}: {exc}")

    def pipeline(self, matcher: Matcher) -> Pipeline:
        """The matching pipeline over `matcher` (uploads to `/m/lookup`)."""
        return Pipeline(matcher)
