"""Crawl workers share the watches through the store, on SQLite and PostgreSQL: two worker
processes started together split the due watches (each crawled once), and a worker killed
mid-crawl keeps its watch only until its lease expires; the next worker then takes it over."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from childguard.crawl.leases import holder_of, watch_task
from childguard.crawl.matching import no_matches
from childguard.crawl.runner import crawl_watches
from childguard.crawl.watch import Watch
from childguard.crawl.watchstore import due_watches, save_watch
from childguard.jobs.schedule import recent_runs
from childguard.store.crawl_models import CrawlRun
from childguard.store.db import open_store

LEASE = timedelta(seconds=4)


def _watch(site: Any, name: str) -> Watch:
    return Watch(
        name=name,
        seeds=(site.url(f"/{name}/"),),
        max_depth=0,
        download_delay=0,
        obey_robots=False,
        robots_override_reason="test site on loopback",
    )


def _work(store_url: str, holder: str, lease_s: float) -> None:
    """One crawl worker: every due watch it can claim. Worker B is `childguard crawl run --due`
    itself; the others call the library as it does (hashing in threads, no matcher)."""
    if holder == "B":
        from childguard.cli import app

        argv = ["crawl", "run", "--due", "--worker", holder, "--lease", f"{lease_s:g}s"]
        app([*argv, "--allow-private", "--plain", "--no-progress", "--db", store_url])
    store = open_store(store_url)
    watches = due_watches(store, unfinished=True)
    store.close()
    crawl_watches(
        store_url,
        watches,
        matcher=no_matches,
        allow_private=True,
        robust=False,
        holder=holder,
        lease=timedelta(seconds=lease_s),
        hash_workers=0,
    )


def _start(store_url: str, holder: str, lease_s: float) -> multiprocessing.process.BaseProcess:
    proc = multiprocessing.get_context("fork").Process(
        target=_work, args=(store_url, holder, lease_s), name=holder
    )
    proc.start()
    return proc


def _runs_of(store: Any, name: str) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).where(CrawlRun.watch_name == name)) or 0)


def test_two_workers_split_the_watches_and_a_dead_workers_watch_is_taken_over(
    site: Any, store_url: str
) -> None:
    store = open_store(store_url)
    try:
        names = ["w1", "w2", "w3", "w4"]
        for name in names:
            site.page(f"/{name}/", f"<html><title>{name}</title></html>", delay=0.4)
            save_watch(store, _watch(site, name))
        workers = [_start(store_url, h, LEASE.total_seconds()) for h in ("A", "B")]
        for proc in workers:
            proc.join(60)
            assert proc.exitcode == 0
        crawled_by = {}
        for name in names:
            assert _runs_of(store, name) == 1  # each watch crawled once, by one worker
            (run,) = recent_runs(store, watch_task(name))
            assert run.status == "ok"
            crawled_by[name] = run.node
        assert set(crawled_by.values()) == {"A", "B"}  # ... and the two workers shared them

        # A worker dies mid-crawl: its watch is held until the lease expires, then taken over.
        site.page("/slow/", "<html><title>slow</title></html>", delay=30)
        save_watch(store, _watch(site, "slow"))
        dying = _start(store_url, "C", 2)
        deadline = time.monotonic() + 30
        while holder_of(store, "slow") != "C" or _runs_of(store, "slow") == 0:  # C is crawling
            assert time.monotonic() < deadline and dying.is_alive()
            time.sleep(0.1)
        assert dying.pid is not None
        os.kill(dying.pid, signal.SIGKILL)
        dying.join(10)
        site.page("/slow/", "<html><title>slow</title></html>")

        def worker_d() -> list[Any]:
            return crawl_watches(
                store_url,
                [_watch(site, "slow")],
                matcher=no_matches,
                allow_private=True,
                robust=False,
                holder="D",
                lease=LEASE,
                hash_workers=0,
            )

        (early,) = worker_d()
        assert early.skipped == "held by C" and early.stats is None and early.problem is None
        time.sleep(2.2)  # C's lease runs out
        store_b = open_store(store_url)
        try:  # C's crawl never finished, so the watch is due although C started it just now
            assert [w.name for w in due_watches(store_b, unfinished=True)] == ["slow"]
        finally:
            store_b.close()
        (late,) = worker_d()
        assert late.skipped is None and late.stats is not None and late.stats.pages == 1
        latest, dead = recent_runs(store, watch_task("slow"))
        assert (latest.node, latest.status) == ("D", "ok")
        assert (dead.node, dead.status) == ("C", "failed")
        assert "the lease of C expired" in (dead.error or "")
        assert holder_of(store, "slow") is None  # released when D was done
        with store.session() as s:
            statuses = s.scalars(
                select(CrawlRun.status).where(CrawlRun.watch_name == "slow").order_by(CrawlRun.id)
            ).all()
        assert statuses == ["failed", "finished"]  # C's crawl closed as failed when D took over
        (again,) = worker_d()  # crawled just now: not due, released untouched
        assert again.skipped is not None and _runs_of(store, "slow") == 2
    finally:
        store.close()
