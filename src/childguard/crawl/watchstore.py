"""Watches kept in the store: save, load, list, remove, and which are due for a re-check."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from childguard.crawl.watch import Watch
from childguard.errors import ChildguardError
from childguard.store.base import utcnow
from childguard.store.crawl_models import CrawlRun, CrawlWatch
from childguard.store.db import Store


class WatchNotFound(ChildguardError):
    pass


def save_watch(store: Store, watch: Watch, *, replace: bool = False) -> None:
    with store.session() as s:
        row = s.scalar(select(CrawlWatch).where(CrawlWatch.name == watch.name))
        if row is not None and not replace:
            raise ChildguardError(f"watch {watch.name!r} exists (use --replace to overwrite it)")
        if row is None:
            s.add(CrawlWatch(name=watch.name, config=watch.to_dict()))
        else:
            row.config = watch.to_dict()


def get_watch(store: Store, name: str) -> Watch:
    with store.session() as s:
        row = s.scalar(select(CrawlWatch).where(CrawlWatch.name == name))
        if row is None:
            raise WatchNotFound(f"no watch named {name!r} (see `childguard crawl watch list`)")
        return Watch.from_dict(row.config)


def list_watches(store: Store) -> list[tuple[Watch, datetime | None]]:
    """Every watch with the time of its last run."""
    with store.session() as s:
        rows = s.scalars(select(CrawlWatch).order_by(CrawlWatch.name)).all()
        return [(Watch.from_dict(r.config), r.last_run_at) for r in rows]


def remove_watch(store: Store, name: str) -> None:
    with store.session() as s:
        row = s.scalar(select(CrawlWatch).where(CrawlWatch.name == name))
        if row is None:
            raise WatchNotFound(f"no watch named {name!r}")
        s.delete(row)


def _last_run_status(store: Store, name: str) -> str | None:
    with store.session() as s:
        return s.scalar(
            select(CrawlRun.status)
            .where(CrawlRun.watch_name == name)
            .order_by(CrawlRun.id.desc())
            .limit(1)
        )


def is_due(store: Store, watch: Watch, now: datetime | None = None) -> bool:
    """Whether `watch` is due: never run, its last run older than its re-check interval, or its
    last run never finished (its worker died; only a caller holding the watch's lease can tell
    that from a crawl still going on, see `childguard.crawl.leases`)."""
    now = now or utcnow()
    with store.session() as s:
        last = s.scalar(select(CrawlWatch.last_run_at).where(CrawlWatch.name == watch.name))
    if last is None or last + timedelta(seconds=watch.recheck_every) <= now:
        return True
    return _last_run_status(store, watch.name) == "running"


def due_watches(
    store: Store, now: datetime | None = None, *, unfinished: bool = False
) -> list[Watch]:
    """Watches never run, or whose last run is older than their re-check interval; with
    `unfinished`, also those whose last run never finished (for workers that claim each watch
    before crawling it: a live crawl's lease keeps them off it)."""
    now = now or utcnow()
    due = [
        w
        for w, last in list_watches(store)
        if last is None or last + timedelta(seconds=w.recheck_every) <= now
    ]
    if unfinished:
        names = {w.name for w in due}
        due += [
            w
            for w, _ in list_watches(store)
            if w.name not in names and _last_run_status(store, w.name) == "running"
        ]
    return due
