"""Sightings: record them as a crawl finds matches, reconcile them when it ends, query them.

`SightingRecorder` is driven by the crawl's last pipeline stage:
- `page(...)` and `image(...)` are called as pages and images arrive, in any
  order; a sighting is written (or updated) as soon as both its page and its
  matched image are known. One row per (page URL, image URL, matched entry):
  a re-crawl updates `last_seen`, adds one to `times_seen` (once per run) and
  never duplicates.
- `finish()` reconciles the watch's earlier sightings with what this run saw:
  the page is gone (404/410) or no longer shows the image, or the image is gone
  -> `removed` with the time; the image is there but no longer matches ->
  `changed`. A sighting whose page and image were not reached this run (limits,
  timeouts) keeps its status: absence of evidence is not removal.
- Site-profile counters (views, comments; per photo where the profile says so)
  are stored per run in `page_counter`, so growth shows as a series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select

from childguard.crawl.extract import PageCounters
from childguard.crawl.hashing import sha256_of
from childguard.log import get_logger
from childguard.matcher.results import Match
from childguard.signals.content import ContentSignals
from childguard.signals.pdq import PdqSignal
from childguard.store.base import utcnow
from childguard.store.crawl_models import SIGHTING_STATUSES, PageCounter, Sighting
from childguard.store.db import Store
from childguard.store.models import BankEntry
from childguard.store.url_keys import url_key

log = get_logger("childguard.crawl.sightings")


@dataclass(frozen=True)
class SightingView:
    """A sighting as plain data (for the CLI, the API, alerts)."""

    id: int
    watch_name: str | None
    site: str
    page_url: str
    page_title: str | None
    image_url: str
    entry_id: int | None
    bank: str | None
    bank_kind: str | None
    organisation: str | None
    signal_type: str
    distance: int
    first_seen: datetime
    last_seen: datetime
    times_seen: int
    status: str
    removed_at: datetime | None
    counters: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("first_seen", "last_seen", "removed_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        for c in data["counters"]:
            c["observed_at"] = c["observed_at"].isoformat()
        return data


def _view(row: Sighting, counters: list[dict[str, Any]] | None = None) -> SightingView:
    return SightingView(
        id=row.id,
        watch_name=row.watch_name,
        site=row.site,
        page_url=row.page_url,
        page_title=row.page_title,
        image_url=row.image_url,
        entry_id=row.entry_id,
        bank=row.bank,
        bank_kind=row.bank_kind,
        organisation=row.organisation,
        signal_type=row.signal_type,
        distance=row.distance,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        times_seen=row.times_seen,
        status=row.status,
        removed_at=row.removed_at,
        counters=counters or [],
    )


SightingHook = Callable[[SightingView, bool], None]  # (sighting, is_new)


@dataclass
class _ImageOutcome:
    gone: bool = False
    hashes: ContentSignals | None = None
    matches: list[Match] = field(default_factory=list)


class SightingRecorder:
    def __init__(
        self,
        store: Store,
        *,
        run_id: int | None,
        watch_name: str | None,
        on_sighting: SightingHook | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.watch_name = watch_name
        self.on_sighting = on_sighting
        self._pages: dict[str, tuple[bool, set[str], str]] = {}  # url -> (gone, images, title)
        self._pages_by_image: dict[str, set[str]] = {}
        self._images: dict[str, _ImageOutcome] = {}
        self._done: set[tuple[str, str, str]] = set()
        self.new_sightings = 0
        self.updated_sightings = 0

    # -- as the crawl goes --------------------------------------------------------------
    def page(
        self,
        url: str,
        *,
        title: str,
        image_urls: list[str],
        gone: bool,
        counters: PageCounters | None = None,
    ) -> None:
        self._pages[url] = (gone, set(image_urls), title)
        for image in image_urls:
            self._pages_by_image.setdefault(image, set()).add(url)
        if counters is not None and self.run_id is not None:
            self._store_counters(url, counters)
        for image in image_urls:
            outcome = self._images.get(image)
            if outcome and outcome.matches:
                self._record(url, image, outcome)

    def image(
        self,
        url: str,
        *,
        page_url: str,
        gone: bool,
        hashes: ContentSignals | None,
        matches: list[Match],
    ) -> None:
        outcome = _ImageOutcome(gone=gone, hashes=hashes, matches=matches)
        self._images[url] = outcome
        self._pages_by_image.setdefault(url, set()).add(page_url)
        if matches:
            for page in sorted(self._pages_by_image[url]):
                self._record(page, url, outcome)

    def _record(self, page_url: str, image_url: str, outcome: _ImageOutcome) -> None:
        title = self._pages.get(page_url, (False, set(), ""))[2] or None
        page_key, image_key = url_key(page_url), url_key(image_url)
        now = utcnow()
        events: list[tuple[SightingView, bool]] = []
        with self.store.session() as s:
            for m in outcome.matches:
                key = (page_url, image_url, m.key)
                if key in self._done:
                    continue
                self._done.add(key)
                row = s.scalar(
                    select(Sighting).where(
                        Sighting.page_key == page_key,
                        Sighting.image_key == image_key,
                        Sighting.match_key == m.key,
                    )
                )
                is_new = row is None
                if row is None:
                    row = Sighting(
                        watch_name=self.watch_name,
                        site=(urlsplit(page_url).hostname or ""),
                        page_url=page_url,
                        page_key=page_key,
                        page_title=(title or None) and title[:1000],
                        image_url=image_url,
                        image_key=image_key,
                        entry_id=m.entry_id,
                        match_key=m.key,
                        bank=m.bank_name,
                        bank_kind=m.bank_kind,
                        organisation=m.organisation,
                        signal_type=m.signal_type,
                        distance=m.distance,
                        first_seen=now,
                        last_seen=now,
                        times_seen=1,
                        status="online",
                        status_changed_at=now,
                        first_run_id=self.run_id,
                        last_run_id=self.run_id,
                    )
                    s.add(row)
                    self.new_sightings += 1
                else:
                    row.last_seen = now
                    row.distance = m.distance
                    if row.last_run_id != self.run_id or self.run_id is None:
                        row.times_seen += 1
                    row.last_run_id = self.run_id
                    if title:
                        row.page_title = title[:1000]
                    if row.status != "online":
                        row.status, row.status_changed_at, row.removed_at = "online", now, None
                    self.updated_sightings += 1
                if outcome.hashes is not None:
                    row.image_sha256 = sha256_of(outcome.hashes)
                    row.image_pdq = outcome.hashes.value(PdqSignal.name)
                row.match = m.to_dict()
                s.flush()
                events.append((_view(row), is_new))
        for view, is_new in events:
            log.info(
                "sighting",
                id=view.id,
                new=is_new,
                page=page_url,
                image=image_url,
                bank=view.bank,
                distance=view.distance,
            )
            if self.on_sighting is not None:
                try:
                    self.on_sighting(view, is_new)
                except Exception as exc:  # a hook's failure must not lose the crawl
                    log.error("sighting_hook_failed", id=view.id, error=str(exc))

    def _store_counters(self, page_url: str, counters: PageCounters) -> None:
        now = utcnow()
        readings = (
            [("", counters.views, counters.comments)]
            if (counters.views is not None or counters.comments is not None)
            else []
        )
        readings += [(img, views, None) for img, views in counters.per_image_views.items()]
        if not readings:
            return
        page_key = url_key(page_url)
        with self.store.session() as s:
            have = set(
                s.scalars(
                    select(PageCounter.image_url).where(
                        PageCounter.run_id == self.run_id,
                        PageCounter.page_key == page_key,
                    )
                )
            )
            for image_url, views, comments in readings:
                if image_url not in have:
                    s.add(
                        PageCounter(
                            run_id=self.run_id,
                            page_url=page_url,
                            page_key=page_key,
                            image_url=image_url,
                            image_key=url_key(image_url),
                            observed_at=now,
                            views=views,
                            comments=comments,
                        )
                    )

    # -- at the end -------------------------------------------------------------------
    def finish(self) -> dict[str, int]:
        """Reconcile earlier sightings with this run. Returns counts by new status."""
        now = utcnow()
        changes = {"removed": 0, "changed": 0}
        page_keys = [url_key(page) for page in self._pages]
        conditions: list[Any] = [
            Sighting.page_key.in_(page_keys[start : start + 1000])
            for start in range(0, len(page_keys), 1000)
        ]
        if self.watch_name is not None:
            conditions.append(Sighting.watch_name == self.watch_name)
        with self.store.session() as s:
            rows: dict[int, Sighting] = {}
            for condition in conditions:  # one query each: a query's parameters are limited
                for row in s.scalars(
                    select(Sighting).where(Sighting.status != "removed", condition)
                ):
                    rows[row.id] = row
            for row in rows.values():
                if (row.page_url, row.image_url, row.match_key) in self._done:
                    continue
                new_status = self._verdict(row)
                if new_status is None or new_status == row.status:
                    continue
                row.status, row.status_changed_at = new_status, now
                if new_status == "removed":
                    row.removed_at = now
                changes[new_status] += 1
                log.info(
                    "sighting_status",
                    id=row.id,
                    status=new_status,
                    page=row.page_url,
                    image=row.image_url,
                )
        return changes

    def _verdict(self, row: Sighting) -> str | None:
        image = self._images.get(row.image_url)
        page = self._pages.get(row.page_url)
        if image is not None and image.gone:
            return "removed"
        if page is not None:
            gone, images, _ = page
            if gone or row.image_url not in images:
                return "removed"
        if image is not None and image.hashes is not None and page is not None:
            return "changed"  # fetched and on the page, but it no longer matches this entry
        return None


def list_sightings(
    store: Store,
    *,
    organisation: str | None = None,
    site: str | None = None,
    status: str | None = None,
    watch: str | None = None,
    bank: str | None = None,
    limit: int | None = None,
) -> list[SightingView]:
    """Sightings, newest first, filtered by organisation, site (host or parent domain), status."""
    q = select(Sighting)
    if organisation:
        q = q.where(Sighting.organisation == organisation)
    if site:
        site = site.lower().lstrip(".")
        q = q.where(or_(Sighting.site == site, Sighting.site.like(f"%.{site}")))
    if status:
        q = q.where(Sighting.status == status)
    if watch:
        q = q.where(Sighting.watch_name == watch)
    if bank:
        q = q.where(Sighting.bank == bank)
    q = q.order_by(Sighting.first_seen.desc(), Sighting.id.desc())
    if limit:
        q = q.limit(limit)
    with store.session() as s:
        return [_view(r) for r in s.scalars(q)]


def get_sighting(store: Store, sighting_id: int) -> SightingView | None:
    """One sighting with its page's counter series (oldest first)."""
    with store.session() as s:
        row = s.get(Sighting, sighting_id)
        if row is None:
            return None
        series = [
            {
                "observed_at": c.observed_at,
                "image_url": c.image_url or None,
                "views": c.views,
                "comments": c.comments,
            }
            for c in s.scalars(
                select(PageCounter)
                .where(
                    PageCounter.page_key == row.page_key,
                    PageCounter.image_key.in_([url_key(""), row.image_key]),
                )
                .order_by(PageCounter.observed_at)
            )
        ]
        return _view(row, series)


def pages_to_recheck(store: Store, watch_name: str) -> list[str]:
    """Pages of the watch's sightings that are not yet removed (a re-crawl revisits them)."""
    with store.session() as s:
        return sorted(
            set(
                s.scalars(
                    select(Sighting.page_url).where(
                        Sighting.watch_name == watch_name, Sighting.status != "removed"
                    )
                )
            )
        )


def _of_bank(bank_id: int) -> Any:
    """Sightings whose matched entry is in bank `bank_id` (one organisation's protected bank)."""
    return Sighting.entry_id.in_(select(BankEntry.id).where(BankEntry.bank_id == bank_id))


def bank_sightings(
    store: Store,
    bank_id: int,
    *,
    status: str | None = None,
    since: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[SightingView]:
    """Sightings of entries of one bank, newest first (by id), a page at a time: those first
    seen at or after `since`, with `status`, and with ids below `before_id` (the last id of the
    previous page). A sighting whose entry was deleted is no longer the bank's."""
    q = select(Sighting).where(_of_bank(bank_id))
    if status:
        q = q.where(Sighting.status == status)
    if since is not None:
        q = q.where(Sighting.first_seen >= since)
    if before_id is not None:
        q = q.where(Sighting.id < before_id)
    q = q.order_by(Sighting.id.desc()).limit(limit)
    with store.session() as s:
        return [_view(r) for r in s.scalars(q)]


def get_bank_sighting(store: Store, bank_id: int, sighting_id: int) -> SightingView | None:
    """One sighting of an entry of bank `bank_id`, with its counter series; None when there is
    no such sighting or it is another bank's."""
    with store.session() as s:
        found = s.scalar(select(Sighting.id).where(Sighting.id == sighting_id, _of_bank(bank_id)))
    return get_sighting(store, found) if found is not None else None


def bank_sighting_counts(store: Store, bank_id: int) -> dict[str, int]:
    """How many sightings of one bank's entries there are, by status (every status named)."""
    counts = dict.fromkeys(SIGHTING_STATUSES, 0)
    with store.session() as s:
        rows = s.execute(
            select(Sighting.status, func.count()).where(_of_bank(bank_id)).group_by(Sighting.status)
        )
        for status, n in rows:
            counts[status] = int(n)
    return counts
