"""Run one crawl of one watch: `run_crawl(watch, ...) -> CrawlStats`.

Twisted's reactor cannot be restarted inside a process, so each crawl runs in a
fresh child process by default (`multiprocessing`'s `fork` context: the matcher
callable and hooks are inherited, nothing needs pickling; results come back over
a pipe). The CLI, tests and the demo can therefore call `run_crawl` any number of
times. `in_process=True` runs Scrapy's `CrawlerProcess` in the calling process
instead, which works once per process (useful under a debugger or profiler).

Inside the crawl, hashing runs in a process pool (`hash_workers`, default the
CPU count) fed by a bounded queue that pauses the downloader while it is full
(`childguard.crawl.hashqueue`), so the reactor keeps downloading while images are
decoded and hashed, and never fetches far ahead of the workers. The crawl process
dies with the process that started it, and its pool with it.
`robust=True` (the default) gives every image the robust query views and, when the
matcher needs them, ORB features; `robust=False` hashes like plain `childguard hash`
(the throughput benchmark compares the two).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from childguard import __version__
from childguard.crawl.cache import ImageCache
from childguard.crawl.context import CrawlContext, CrawlStats, stage_failed
from childguard.crawl.hashqueue import ForkPool, make_pool
from childguard.crawl.imagefetch import FetchPolicy, configure
from childguard.crawl.leases import DEFAULT_LEASE, claim_watch, holder_of
from childguard.crawl.matching import MatchFn, StoreMatcher, no_matches
from childguard.crawl.sightings import SightingHook, SightingRecorder, pages_to_recheck
from childguard.crawl.watch import Watch
from childguard.errors import ChildguardError
from childguard.forksafe import die_with_parent
from childguard.log import get_logger
from childguard.store.base import utcnow
from childguard.store.db import Store, open_store

log = get_logger("childguard.crawl.runner")

IMAGE_MAXSIZE = 40 * 1024 * 1024
# Images fetched and hashed at once by each hash worker that fetches its own images.
FETCH_THREADS = 2
# Images handed to each such worker at once (under way, or waiting there for a thread): about
# a tenth of a second of hashing, so the workers keep busy while the reactor parses a burst of
# pages or records results (three starved them for a third of a 2,000-image crawl). A host's
# politeness limit still bounds them: with fewer than this many fetches allowed per host, that
# many are in the workers at once (`HostGate`).
FETCH_BACKLOG = 32
# Longer URLs are skipped; Scrapy counts them as urllength/request_ignored_count.
URL_MAX_LENGTH = 32_768


class CrawlError(ChildguardError):
    """The crawl could not run (bad settings, store unreachable, the crawl process died)."""


def crawl_settings(
    watch: Watch,
    *,
    allow_private: bool = False,
    static_hosts: dict[str, list[str]] | None = None,
    overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Scrapy settings for a watch: politeness, limits, SSRF guard, middlewares, pipelines."""
    settings: dict[str, Any] = {
        "BOT_NAME": "childguard",
        "USER_AGENT": f"childguard/{__version__} (finds re-posted photos of children)",
        "ROBOTSTXT_OBEY": watch.obey_robots,
        "CONCURRENT_REQUESTS": 32,
        # Items processed in parallel per response. Scrapy starts this many asyncio tasks for
        # every response, and ours yield one item (an image), or a page item, its links and one
        # batch of its images (a few dozen image requests through a proxy), each handed on at
        # once: the default of 100 made task creation a third of the crawl's own CPU time.
        "CONCURRENT_ITEMS": 4,
        "CONCURRENT_REQUESTS_PER_DOMAIN": watch.concurrency_per_domain,
        "DOWNLOAD_DELAY": watch.download_delay,
        "DOWNLOAD_DELAY_JITTER": 0.5,  # ±50% around DOWNLOAD_DELAY
        "AUTOTHROTTLE_ENABLED": watch.download_delay > 0,
        "AUTOTHROTTLE_START_DELAY": max(watch.download_delay, 0.1),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(watch.concurrency_per_domain),
        "DOWNLOAD_TIMEOUT": 30,
        "DOWNLOAD_MAXSIZE": IMAGE_MAXSIZE,
        "DOWNLOAD_WARNSIZE": 10 * 1024 * 1024,
        "RETRY_TIMES": 2,
        "CHILDGUARD_RETRY_BACKOFF": 0.5,
        "REDIRECT_MAX_TIMES": 5,
        # Scrapy skips URLs over 2,083 characters by default (an old browser's limit); signed
        # CDN links and tracking query strings pass it, and the store keeps any length.
        "URLLENGTH_LIMIT": URL_MAX_LENGTH,
        "DEPTH_LIMIT": 0,  # the spider applies the watch's depth to pages only
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # Extensions a crawl has no use for: memory limits (none set), periodic INFO stats
        # lines (logged at WARNING), feed exports (none).
        "MEMUSAGE_ENABLED": False,
        "EXTENSIONS": {
            "scrapy.extensions.logstats.LogStats": None,
            "scrapy.extensions.feedexport.FeedExporter": None,
        },
        # A development aid (Scrapy reads and parses a callback's source to warn about a
        # generator's `return value`); our callbacks are tested, so the crawl skips it.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "HTTPCACHE_ENABLED": False,
        "LOG_LEVEL": "WARNING",
        # Scrapy looks up ten packages' versions at every start (about 20 ms) to log them at
        # INFO, which the crawl does not show.
        "LOG_VERSIONS": [],
        "TWISTED_DNS_RESOLVER": "childguard.netguard.ssrf.GuardedHostnameResolver",
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "childguard.crawl.middlewares.PageBudgetMiddleware": 120,
            "childguard.crawl.middlewares.BackoffRetryMiddleware": 550,
            "childguard.crawl.middlewares.ConditionalImageMiddleware": 560,
            "childguard.netguard.ssrf.SsrfGuardMiddleware": 950,
        },
        "ITEM_PIPELINES": {
            "childguard.crawl.pipelines.HashPipeline": 300,
            "childguard.crawl.pipelines.MatchPipeline": 400,
            "childguard.crawl.pipelines.SightingPipeline": 500,
        },
        "CHILDGUARD_ALLOW_PRIVATE": allow_private,
        "CHILDGUARD_PROXY": watch.proxy,
        "CHILDGUARD_STATIC_HOSTS": static_hosts or {},
        "CHILDGUARD_IMAGE_FETCH": "workers",
    }
    settings.update(overrides or {})
    return settings


def _start_run(store: Store, watch: Watch, allow_private: bool) -> int:
    from sqlalchemy import select

    from childguard.store.crawl_models import CrawlRun, CrawlWatch

    with store.session() as s:
        w = s.scalar(select(CrawlWatch).where(CrawlWatch.name == watch.name))
        run = CrawlRun(
            watch_id=w.id if w else None,
            watch_name=watch.name,
            obey_robots=watch.obey_robots,
            robots_override_reason=None if watch.obey_robots else watch.robots_override_reason,
            allow_private=allow_private,
        )
        s.add(run)
        if w is not None:
            w.last_run_at = utcnow()
        s.flush()
        return run.id


def _finish_run(store: Store, run_id: int, status: str, stats: CrawlStats) -> None:
    from childguard.store.crawl_models import CrawlRun

    with store.session() as s:
        run = s.get(CrawlRun, run_id)
        if run is not None:
            run.status, run.finished_at = status, utcnow()
            data = stats.to_dict()
            data.pop("scrapy", None)
            run.stats = data


def _collect(
    stats: dict[str, Any],
    run_id: int | None,
    watch: Watch,
    elapsed: float,
    recorder: SightingRecorder,
) -> CrawlStats:
    def g(key: str) -> int:
        return int(stats.get(f"childguard/{key}", 0))

    return CrawlStats(
        run_id=run_id,
        watch=watch.name,
        pages=g("pages_fetched"),
        pages_gone=g("pages_gone"),
        pages_failed=g("pages_failed"),
        images=g("images_hashed")
        + g("images_cached_content")
        + g("images_not_modified")
        + g("images_not_an_image"),
        images_hashed=g("images_hashed"),
        images_cached=g("images_cached_content"),
        images_not_modified=g("images_not_modified"),
        images_failed=g("images_failed") + g("images_gone"),
        images_matched=g("images_matched"),
        new_sightings=recorder.new_sightings,
        updated_sightings=recorder.updated_sightings,
        sightings_removed=g("sightings_removed"),
        sightings_changed=g("sightings_changed"),
        ssrf_refused=g("ssrf_refused"),
        stage_errors=g("stage_errors"),
        stage_error=str(stats.get("childguard/stage_error", "")),
        image_bytes=g("image_bytes"),
        elapsed_s=round(elapsed, 3),
        finish_reason=str(stats.get("finish_reason", "")),
        scrapy={k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in stats.items()},
    )


class _ScrapyLevelFilter(logging.Filter):
    """Drops Scrapy's and Twisted's records under LOG_LEVEL: Scrapy resets its loggers to DEBUG,
    and without its own root handler its records would reach ours."""

    def __init__(self, level: str) -> None:
        super().__init__()
        self.level = logging.getLevelNamesMapping().get(level.upper(), logging.WARNING)

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or not record.name.startswith(("scrapy", "twisted"))


def _images_in_workers(watch: Watch, settings: dict[str, Any]) -> bool:
    """Whether the hash workers fetch the images (the default), or Scrapy does: through a proxy
    (Scrapy's proxy handling and its checks), or with CHILDGUARD_IMAGE_FETCH = "scrapy"."""
    mode = str(settings.get("CHILDGUARD_IMAGE_FETCH", "workers"))
    if mode not in ("workers", "scrapy"):
        raise CrawlError(f"CHILDGUARD_IMAGE_FETCH must be 'workers' or 'scrapy', not {mode!r}")
    return mode == "workers" and not watch.proxy


def _crawl_here(
    watch: Watch,
    store_url: str | None,
    matcher: MatchFn,
    settings: dict[str, Any],
    hash_workers: int | None,
    on_sighting: SightingHook | None,
    robust: bool = True,
    *,
    migrate: bool = True,
) -> CrawlStats:
    from scrapy.crawler import CrawlerProcess

    from childguard.crawl.spider import WatchSpider

    store = open_store(store_url, migrate=migrate)
    run_id = _start_run(store, watch, bool(settings.get("CHILDGUARD_ALLOW_PRIVATE")))
    recorder = SightingRecorder(
        store, run_id=run_id, watch_name=watch.name, on_sighting=on_sighting
    )
    cache = ImageCache(store)
    cache.preload()
    fetch_in_workers = _images_in_workers(watch, settings)
    if fetch_in_workers:  # before the pool forks: its workers inherit the policy
        configure(FetchPolicy.from_settings(settings, watch.seeds), cache.known_sha())
    # A worker that fetches its images runs two at once: one waits on the network while the
    # other hashes, and the queue keeps one more waiting for each worker.
    threads = FETCH_THREADS if fetch_in_workers else 1
    pool, workers = make_pool(hash_workers, threads)
    context = CrawlContext(
        watch=watch,
        store=store,
        cache=cache,
        matcher=matcher,
        recorder=recorder,
        hash_pool=pool,
        hash_workers=workers,
        run_id=run_id,
        recheck_pages=pages_to_recheck(store, watch.name),
        robust=robust,
        fetch_in_workers=fetch_in_workers,
        hash_queue_depth=workers * FETCH_BACKLOG if fetch_in_workers else None,
    )
    started = time.perf_counter()
    status = "failed"
    stats = CrawlStats(run_id=run_id, watch=watch.name)
    quiet = _ScrapyLevelFilter(str(settings.get("LOG_LEVEL", "WARNING")))
    for handler in logging.getLogger().handlers:
        handler.addFilter(quiet)
    try:
        process = CrawlerProcess({**settings, "LOG_INSTALL_ROOT_HANDLER": False})
        crawler = process.create_crawler(WatchSpider)
        _count_stage_errors(crawler)
        process.crawl(crawler, context=context)
        process.start()
        assert crawler.stats is not None
        stats = _collect(
            crawler.stats.get_stats(), run_id, watch, time.perf_counter() - started, recorder
        )
        status = "failed" if stats.problem() else "finished"
        return stats
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(quiet)
        if isinstance(pool, ForkPool):
            pool.stop()  # the workers exit while the run is recorded
        try:
            _finish_run(store, run_id, status, stats)
            store.close()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _count_stage_errors(crawler: Any) -> None:
    """Count an exception in a spider callback or an item pipeline as a stage error (Scrapy
    logs it and carries on, which would leave a crawl that lost items looking finished)."""
    from scrapy import signals

    def item_error(item: Any, response: Any, spider: Any, failure: Any) -> None:
        stage_failed(crawler.stats, f"item pipeline: {failure.getErrorMessage()}")

    def spider_error(failure: Any, response: Any, spider: Any) -> None:
        url = getattr(response, "url", "?")
        stage_failed(crawler.stats, f"spider callback on {url}: {failure.getErrorMessage()}")

    crawler.signals.connect(item_error, signal=signals.item_error, weak=False)
    crawler.signals.connect(spider_error, signal=signals.spider_error, weak=False)


_PRELOADED = False
_MIGRATED: set[str] = set()


def warm_up(watch: Watch | None = None, *, store_url: str | None = None) -> None:
    """Import Scrapy and every crawl component in this process now (what the first `run_crawl`
    would do), so that the first crawl starts as quickly as later ones; with `store_url`, also
    migrate that store now (the first `run_crawl` into it then skips the check)."""
    probe = watch or Watch(name="warm-up", seeds=("https://example.org/",))
    _preload_scrapy(crawl_settings(probe))
    _migrated(store_url)


def _preload_scrapy(settings: dict[str, Any]) -> None:
    """Import Scrapy, the spider and every component the crawl loads (middlewares, pipelines,
    extensions, download handlers) here, once, before forking, so that crawl processes start
    without importing them again: seconds of CPU per crawl on a busy machine (the HTTP
    handler's import alone walks the call stack for a deprecation check). Importing installs
    no reactor; each crawl process installs its own."""
    global _PRELOADED
    if _PRELOADED:
        return
    import contextlib
    import importlib

    import scrapy.crawler  # noqa: F401
    from scrapy.settings import default_settings

    import childguard.crawl.spider  # noqa: F401

    paths: list[str] = []
    for name in (
        "DOWNLOADER_MIDDLEWARES_BASE",
        "SPIDER_MIDDLEWARES_BASE",
        "EXTENSIONS_BASE",
        "DOWNLOAD_HANDLERS_BASE",
        "ITEM_PIPELINES_BASE",
    ):
        value = getattr(default_settings, name, {}) or {}
        paths += [p for p in (value.values() if "HANDLERS" in name else value) if p]
    for name in ("DOWNLOADER_MIDDLEWARES", "ITEM_PIPELINES"):
        paths += [p for p in settings.get(name, {}) if isinstance(p, str)]
    for path in paths:
        with contextlib.suppress(Exception):  # a component Scrapy would not load either
            importlib.import_module(path.rsplit(".", 1)[0])
    # The store's ORM mappers, configured once here rather than by every crawl process's first
    # query (about 40 ms of each crawl's start).
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    _PRELOADED = True


def _migrated(store_url: str | None) -> bool:
    """Migrate the store at `store_url` once per process, before forking, so each crawl
    process opens it without running the migrations again; True once done here."""
    if store_url is None:
        return False
    if store_url not in _MIGRATED:
        open_store(store_url).close()
        _MIGRATED.add(store_url)
    return True


def _close_dead_runs(store: Store, watch_name: str, holder: str) -> None:
    """Crawl runs of `watch_name` still `running` once a worker holds its lease: their worker
    died mid-crawl. Recorded as failed."""
    from sqlalchemy import update

    from childguard.store.crawl_models import CrawlRun

    with store.session() as s:
        s.execute(
            update(CrawlRun)
            .where(CrawlRun.watch_name == watch_name, CrawlRun.status == "running")
            .values(
                status="failed",
                finished_at=utcnow(),
                stats={"problem": f"its worker stopped mid-crawl; {holder} took the watch over"},
            )
            .execution_options(synchronize_session=False)
        )


def _child(conn: Any, args: tuple[Any, ...], parent_pid: int, migrated: bool) -> None:
    die_with_parent(parent_pid)  # a worker killed mid-crawl takes its crawl with it
    # The objects inherited from the parent (Scrapy, the store's mappers: some 170,000) are
    # never garbage here; frozen, the collector no longer walks them (a full collection took
    # 0.2 s of a 2,000-image crawl, the reactor and the workers' feed stalled meanwhile) nor
    # touches their pages.
    gc.freeze()
    try:
        result = _crawl_here(*args, migrate=not migrated)
        conn.send(("ok", result))
    except BaseException as exc:  # report every failure to the parent, then exit
        conn.send(("error", f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def run_crawl(
    watch: Watch,
    *,
    store_url: str | None = None,
    matcher: MatchFn | None = None,
    settings_overrides: dict[str, Any] | None = None,
    allow_private: bool = False,
    static_hosts: dict[str, list[str]] | None = None,
    hash_workers: int | None = None,
    on_sighting: SightingHook | None = None,
    in_process: bool = False,
    timeout_s: float | None = None,
    robust: bool = True,
    heartbeat: Callable[[], bool] | None = None,
    heartbeat_every: float = 5.0,
) -> CrawlStats:
    """Crawl `watch` once, record sightings in the store at `store_url`, return the run's stats.

    `matcher(ContentSignals)` returns the `Match`es of a piece of content (default: none).
    `allow_private` lifts the SSRF policy (tests, the demo on 127.0.0.1); `static_hosts`
    maps host names to addresses. `on_sighting(view, is_new)` is called for every
    sighting written (in the crawl process). `hash_workers=0` hashes in threads.
    `robust=False` skips the robust views and features (plain PDQ, as `childguard hash`).
    `heartbeat()` is called every `heartbeat_every` seconds while the crawl process runs (a
    worker renews its lease on the watch there); when it answers False the crawl is stopped
    and CrawlError raised.
    """
    settings = crawl_settings(
        watch, allow_private=allow_private, static_hosts=static_hosts, overrides=settings_overrides
    )
    args = (watch, store_url, matcher or no_matches, settings, hash_workers, on_sighting, robust)
    if in_process:
        return _crawl_here(*args)
    _preload_scrapy(settings)
    migrated = _migrated(store_url)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_child, args=(child, args, os.getpid(), migrated), name=f"crawl-{watch.name}"
    )
    proc.start()
    child.close()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    stopped = False
    try:
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if heartbeat is None:
                step = left
            else:
                step = heartbeat_every if left is None else min(heartbeat_every, left)
            if parent.poll(step):
                break
            if deadline is not None and time.monotonic() >= deadline:
                stopped = True
                raise CrawlError(f"crawl of {watch.name!r} did not finish within {timeout_s}s")
            if heartbeat is not None and not heartbeat():
                stopped = True
                raise CrawlError(f"crawl of {watch.name!r} stopped: another worker took it over")
        kind, payload = parent.recv()
    except EOFError:
        proc.join()
        raise CrawlError(
            f"the crawl process of {watch.name!r} died (exit code {proc.exitcode})"
        ) from None
    finally:
        if proc.is_alive() and stopped and not parent.poll(0):
            proc.terminate()
        proc.join()
        parent.close()
    if kind != "ok":
        raise CrawlError(f"crawl of {watch.name!r} failed: {payload}")
    result: CrawlStats = payload
    return result


@dataclass(frozen=True)
class CrawlOutcome:
    """One watch's crawl in a series: its stats, or why it failed."""

    watch: str
    stats: CrawlStats | None = None
    error: str | None = None
    skipped: str | None = None  # not crawled by this worker, and why (held by another)

    @property
    def problem(self) -> str | None:
        """Why this crawl failed: it could not run (`error`), or it ran and fetched no page
        (`CrawlStats.problem`); None when it did its work, or was left to another worker."""
        if self.skipped is not None:
            return None
        if self.stats is None:
            return self.error or "the crawl did not run"
        return self.stats.problem()


def crawl_watches(
    store_url: str,
    watches: Sequence[Watch],
    *,
    matcher: MatchFn | None = None,
    allow_private: bool = False,
    robust: bool = True,
    on_outcome: Callable[[CrawlOutcome], None] | None = None,
    holder: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
    force: bool = False,
    hash_workers: int | None = None,
) -> list[CrawlOutcome]:
    """Crawl each watch once, in turn, each in its own process, matching against the banks of
    the store at `store_url` (or with `matcher`). A failed crawl is reported in its outcome and
    the others still run; `on_outcome` is called as each one ends.

    With `holder` (a worker's name) each watch is first claimed (`childguard.crawl.leases`):
    one another worker holds, or (without `force`) one crawled within its re-check interval by
    another worker, is skipped (`CrawlOutcome.skipped`); the lease is renewed while the crawl
    runs, and the crawl stopped if it is lost."""
    match = matcher if matcher is not None else StoreMatcher(store_url)
    store = open_store(store_url) if holder is not None else None
    outcomes: list[CrawlOutcome] = []
    try:
        for watch in watches:
            outcome = _crawl_one(
                store,
                watch,
                store_url,
                match,
                allow_private,
                robust,
                holder,
                lease,
                force,
                hash_workers,
            )
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    finally:
        if store is not None:
            store.close()
    return outcomes


def _crawl_one(
    store: Store | None,
    watch: Watch,
    store_url: str,
    match: MatchFn,
    allow_private: bool,
    robust: bool,
    holder: str | None,
    lease: timedelta,
    force: bool,
    hash_workers: int | None,
) -> CrawlOutcome:
    held = None
    if store is not None and holder is not None:
        held = claim_watch(store, watch, holder, lease=lease, force=force)
        if held is None:
            other = holder_of(store, watch.name)
            why = f"held by {other}" if other else "crawled by another worker; not due"
            log.info("watch_skipped", watch=watch.name, reason=why)
            return CrawlOutcome(watch.name, skipped=why)
        _close_dead_runs(store, watch.name, holder)
    try:
        stats = run_crawl(
            watch,
            store_url=store_url,
            matcher=match,
            allow_private=allow_private,
            robust=robust,
            hash_workers=hash_workers,
            heartbeat=held.renew if held is not None else None,
            heartbeat_every=max(0.2, lease.total_seconds() / 3),
        )
    except CrawlError as exc:
        if held is not None:
            held.failed(str(exc))
        return CrawlOutcome(watch.name, error=str(exc))
    if held is not None:
        summary = {"run_id": stats.run_id, "pages": stats.pages, "images": stats.images}
        problem = stats.problem()
        if problem:
            held.failed(problem, summary)
        else:
            held.done(summary)
    return CrawlOutcome(watch.name, stats=stats)
