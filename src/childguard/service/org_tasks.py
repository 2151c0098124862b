# Owns the organisations' scheduled tasks: due crawl watches and album monitors.
"""The organisations' watching, run by the service itself (`childguard.service.scheduler`).

- `crawls` (every `crawl_poll_seconds`, one worker of all nodes at a time): crawls each watch
  that is due for its re-check (`childguard.crawl.watchstore.due_watches`) and is not an album
  monitor, matching against the store's banks (new sightings of protected photos are then
  alerted by the `alerts` task). A crawl that could not run, or that fetched no page (every
  request refused by the SSRF policy, or failed), makes the run failed with the reason.
- `albums` (every `album_poll_seconds`, likewise): runs each due album monitor
  (`childguard.protect.albums.monitor_album`): crawls the organisation's own album page,
  records each photo's views and queues the view-spike alerts, which the `alerts` task
  delivers. An album watch is a watch with an organisation and a site profile that reads a
  view counter per photo (`is_album_watch`).

Alert delivery and the daily digests are the `alerts` task's (`service/scheduler.py`).

Scheduled crawls follow the service's address policy: private addresses only with
`allow_private_fetch`, or for the hosts named in `crawl_private_hosts`; `crawl_static_hosts`
(`host=address`) resolves names without DNS, for tests and the demo's local sites. A round
with work to do runs in a process of its own, forked from multiprocessing's fork server (a
clean process that has loaded this module once, so a round starts in milliseconds) with the
service's environment of the moment: the service's threads and open database connections are
never forked (a SQLite connection copied into a child mid-write leaves the child waiting on a
lock only its parent's thread held). There each crawl runs in its own
process (`run_crawl`, as `childguard crawl run` does), hashes with `crawl_hash_workers`
processes, and the round is stopped after `crawl_timeout_seconds` or when the service stops.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from childguard.crawl.leases import claim_watch, worker_name
from childguard.crawl.runner import CrawlError, run_crawl
from childguard.crawl.watch import Watch
from childguard.crawl.watchstore import due_watches
from childguard.jobs.schedule import IDLE, TaskProblem
from childguard.log import get_logger
from childguard.matcher import Matcher
from childguard.protect.albums import monitor_album
from childguard.service.config import Settings
from childguard.service.scheduler import PeriodicTask, SchedulerContext, register_task
from childguard.signals.content import ContentSignals
from childguard.store.base import utcnow
from childguard.store.db import Store, open_store

log = get_logger(__name__)


def is_album_watch(watch: Watch) -> bool:
    """Whether `watch` monitors an organisation's own album (a view counter per photo) rather
    than looking for copies."""
    return bool(watch.organisation) and any(
        p.item is not None and p.item_views is not None for p in watch.profiles.values()
    )


def static_hosts(settings: Settings) -> dict[str, list[str]]:
    """`crawl_static_hosts` as host -> addresses."""
    hosts: dict[str, list[str]] = {}
    for pair in settings.crawl_static_hosts:
        host, _, address = pair.partition("=")
        hosts.setdefault(host.strip().lower(), []).append(address.strip())
    return hosts


def crawl_options(settings: Settings) -> dict[str, Any]:
    """What `run_crawl` gets from the service's settings."""
    overrides: dict[str, Any] = {}
    if settings.crawl_private_hosts:
        overrides["CHILDGUARD_ALLOW_PRIVATE_HOSTS"] = [
            h.lower() for h in settings.crawl_private_hosts
        ]
    return {
        "allow_private": settings.allow_private_fetch,
        "static_hosts": static_hosts(settings),
        "settings_overrides": overrides,
        "hash_workers": settings.crawl_hash_workers,
        "timeout_s": settings.crawl_timeout_seconds,
    }


class ServiceMatcher:
    """The crawl's matcher over the store's banks, with the service's index folder; opened on
    first use, inside the crawl's own process."""

    def __init__(self, store_url: str, index_base: Any) -> None:
        self.store_url = store_url
        self.index_base = index_base
        self._matcher: Matcher | None = None

    def _open(self) -> Matcher:
        if self._matcher is None:
            self._matcher = Matcher(open_store(self.store_url), index_base=self.index_base)
        return self._matcher

    @property
    def needs_features(self) -> bool:
        return bool(self._open().needs_features)

    def __call__(self, record: ContentSignals) -> list[Any]:
        return list(self._open()(record))


def due_crawls(store: Store, now: datetime) -> list[Watch]:
    """Watches due for a re-check that look for copies (not album monitors)."""
    return [w for w in due_watches(store, now) if not is_album_watch(w)]


def due_albums(store: Store, now: datetime) -> list[Watch]:
    """Album monitors due for a re-check."""
    return [w for w in due_watches(store, now) if is_album_watch(w)]


def crawl_due_here(
    store: Store, settings: Settings, stop: threading.Event, *, now: datetime | None = None
) -> dict[str, Any]:
    """Crawl every due watch in turn, from this process; the summary per watch. TaskProblem
    naming the crawls that failed (with the summary) when any did.

    Each watch is leased for its crawl (`crawl.leases`), as `crawl run --due` workers lease
    them, so the service and those workers never crawl one watch at the same time."""
    options = crawl_options(settings)
    matcher = ServiceMatcher(store.url, settings.index_dir)
    holder = worker_name()
    crawled: list[dict[str, Any]] = []
    problems: list[str] = []
    for watch in due_crawls(store, now or utcnow()):
        if stop.is_set():
            break
        held = claim_watch(store, watch, holder, force=True)
        if held is None:
            crawled.append({"watch": watch.name, "skipped": "held by another crawl worker"})
            continue
        try:
            stats = run_crawl(
                watch, store_url=store.url, matcher=matcher, heartbeat=held.renew, **options
            )
        except CrawlError as exc:
            held.failed(str(exc))
            crawled.append({"watch": watch.name, "problem": str(exc)})
            problems.append(f"crawl {watch.name} failed: {exc}")
            continue
        problem = stats.problem()
        entry = {
            "watch": watch.name,
            "run_id": stats.run_id,
            "pages": stats.pages,
            "images": stats.images,
            "new_sightings": stats.new_sightings,
            "sightings_removed": stats.sightings_removed,
            "ssrf_refused": stats.ssrf_refused,
            "problem": problem,
        }
        crawled.append(entry)
        if problem:
            held.failed(problem, entry)
            problems.append(f"crawl {watch.name} failed: {problem}")
        else:
            held.done(entry)
    summary = {"crawls": crawled}
    if problems:
        raise TaskProblem("; ".join(problems), summary)
    return summary


def albums_due_here(
    store: Store, settings: Settings, stop: threading.Event, *, now: datetime | None = None
) -> dict[str, Any]:
    """Check every due album monitor in turn, from this process; the summary per album
    watch. TaskProblem naming the checks that failed (with the summary) when any did."""
    options = crawl_options(settings)
    checked: list[dict[str, Any]] = []
    problems: list[str] = []
    for watch in due_albums(store, now or utcnow()):
        if stop.is_set():
            break
        try:
            check = monitor_album(watch, watch.organisation or "", store_url=store.url, **options)
        except Exception as exc:  # one album's failure does not stop the others
            checked.append({"watch": watch.name, "problem": f"{type(exc).__name__}: {exc}"})
            problems.append(f"album {watch.name} failed: {exc}")
            continue
        checked.append(
            {
                "watch": watch.name,
                "organisation": check.organisation,
                "run_id": check.run_id,
                "observations_added": check.observations_added,
                "spikes": [s.photo_key for _, s in check.spikes],
                "alerts": check.alert_ids,
            }
        )
    summary = {"albums": checked}
    if problems:
        raise TaskProblem("; ".join(problems), summary)
    return summary


_ROUNDS: dict[str, Callable[..., dict[str, Any]]] = {
    "crawls": crawl_due_here,
    "albums": albums_due_here,
}


def _round_child(
    conn: Any, kind: str, store_url: str, settings: Settings, environ: dict[str, str]
) -> None:
    """A round in a fresh process: its summary, its problem or its error back over `conn`."""
    try:
        os.environ.clear()
        os.environ.update(environ)
        store = open_store(store_url, create=False)
        try:
            summary = _ROUNDS[kind](store, settings, threading.Event())
        finally:
            store.close()
        conn.send(("ok", summary, None))
    except TaskProblem as exc:
        conn.send(("problem", exc.summary, str(exc)))
    except BaseException as exc:  # every failure goes back to the service
        conn.send(("error", None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _rounds_context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def run_round(
    kind: str, store: Store, settings: Settings, stop: threading.Event
) -> Mapping[str, Any]:
    """Run the `crawls` or `albums` round in a fresh process when something is due (else
    `IDLE` at once); its summary, or TaskProblem as the round raised it. The process is ended
    when `stop` is set or after `crawl_timeout_seconds`."""
    due = due_crawls if kind == "crawls" else due_albums
    if not due(store, utcnow()):
        return IDLE
    ctx = _rounds_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_round_child,
        args=(child, kind, store.url, settings, dict(os.environ)),
        name=f"round-{kind}",
    )
    proc.start()
    child.close()
    deadline = time.monotonic() + settings.crawl_timeout_seconds
    try:
        while not parent.poll(0.2):
            if stop.is_set():
                raise TaskProblem(f"the {kind} round was stopped (the service is stopping)")
            if time.monotonic() > deadline or not proc.is_alive():
                if parent.poll(0.5):
                    break
                why = "did not finish in time" if proc.is_alive() else "ended without an answer"
                raise TaskProblem(f"the {kind} round {why} (exit code {proc.exitcode})")
        status, summary, message = parent.recv()
    finally:
        if proc.is_alive():
            proc.terminate()
        proc.join(5)
        parent.close()
    if status == "ok":
        return dict(summary)
    if status == "problem":
        raise TaskProblem(message, summary)
    raise RuntimeError(message)


def _crawls_task(context: SchedulerContext) -> PeriodicTask:
    def run(stop: threading.Event) -> Mapping[str, Any]:
        return run_round("crawls", context.store, context.settings, stop)

    return PeriodicTask("crawls", context.settings.crawl_poll_seconds, run, singleton=True)


def _albums_task(context: SchedulerContext) -> PeriodicTask:
    def run(stop: threading.Event) -> Mapping[str, Any]:
        return run_round("albums", context.store, context.settings, stop)

    return PeriodicTask("albums", context.settings.album_poll_seconds, run, singleton=True)


register_task("crawls", _crawls_task)
register_task("albums", _albums_task)
