# Owns album monitoring: view-count series per photo, the spike check over them, and the
# view-spike and album-surge alerts it queues.
"""An organisation's own album pages: view counts per photo, over time, and the view-spike check.

The crawler reads each photo's view counter through the watch's site profile
(`SiteProfile.item` / `item_image` / `item_views`) and stores one `PageCounter` row per photo per
crawl run. `record_album_views` copies one run's readings into the organisation's
`ViewObservation` series (album = the page URL, photo key = the image URL, linked to the
registered photo published there when there is one); `check_album_run` then applies the
view-spike rule (`childguard.protect.viewspike`) to every album the run saw and queues one
view-spike alert per spiking photo, with the series as evidence (`queue_view_spike_alerts`,
through `childguard.alerts.dispatch.queue_alert`). `monitor_album` does the
whole round: crawl the album watch (without matching: the album is the organisation's own),
record, check.

Idempotent: re-recording a run adds nothing (one observation per photo per time), and an alert
for the same photo and observation is never queued twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from childguard.alerts.dispatch import dedupe_key, queue_alert
from childguard.crawl.watch import Watch
from childguard.protect.organisations import get_organisation
from childguard.protect.viewspike import SpikeReport, SpikeRule, detect_spikes
from childguard.store.base import utcnow
from childguard.store.crawl_models import PageCounter
from childguard.store.protect_models import Alert, Organisation, ProtectedPhoto, ViewObservation
from childguard.store.url_keys import url_key


@dataclass
class AlbumCheck:
    """What one album check did: observations added, each album's spike report, alerts queued."""

    organisation: str
    run_id: int
    observations_added: int = 0
    reports: dict[str, SpikeReport] = field(default_factory=dict)
    alert_ids: list[int] = field(default_factory=list)

    @property
    def spikes(self) -> list[tuple[str, Any]]:
        """(album, ViewSpike) for every spiking photo."""
        return [(album, s) for album, r in self.reports.items() for s in r.spikes]


def _photo_lookup(session: Session, org: Organisation) -> dict[str, int]:
    """Published URL and file name -> protected photo id, for linking observations."""
    lookup: dict[str, int] = {}
    photos = session.scalars(select(ProtectedPhoto).where(ProtectedPhoto.organisation_id == org.id))
    for photo in photos:
        lookup.setdefault(f"name:{photo.file_name}", photo.id)
        if photo.published_url:
            lookup[f"url:{photo.published_url}"] = photo.id
    return lookup


def _photo_id(lookup: dict[str, int], image_url: str) -> int | None:
    found = lookup.get(f"url:{image_url}")
    if found is None:
        found = lookup.get(f"name:{urlsplit(image_url).path.rsplit('/', 1)[-1]}")
    return found


def record_album_views(session: Session, org: Organisation, run_id: int) -> tuple[int, set[str]]:
    """Copy the per-photo view counts a crawl run read into `org`'s series.

    Returns (observations added, album page URLs the run read counters on)."""
    readings = session.scalars(
        select(PageCounter).where(
            PageCounter.run_id == run_id,
            PageCounter.image_url != "",
            PageCounter.views.is_not(None),
        )
    ).all()
    albums = {r.page_url for r in readings}
    if not readings:
        return 0, albums
    have: set[tuple[str, datetime]] = set(
        (key, at)
        for key, at in session.execute(
            select(ViewObservation.photo_key, ViewObservation.observed_at).where(
                ViewObservation.organisation_id == org.id,
                ViewObservation.album_url_key.in_(sorted(url_key(a) for a in albums)),
            )
        )
    )
    lookup = _photo_lookup(session, org)
    added = 0
    for r in readings:
        views = r.views
        if views is None or (r.image_url, r.observed_at) in have:
            continue
        have.add((r.image_url, r.observed_at))
        session.add(
            ViewObservation(
                organisation_id=org.id,
                album=r.page_url,
                photo_key=r.image_url,
                protected_photo_id=_photo_id(lookup, r.image_url),
                observed_at=r.observed_at,
                views=views,
            )
        )
        added += 1
    session.flush()
    return added, albums


def album_series(
    session: Session, org: Organisation, album: str
) -> dict[str, list[tuple[datetime, int]]]:
    """Each photo's view-count series on one album page, oldest first."""
    series: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    rows = session.execute(
        select(ViewObservation.photo_key, ViewObservation.observed_at, ViewObservation.views)
        .where(
            ViewObservation.organisation_id == org.id,
            ViewObservation.album_url_key == url_key(album),
        )
        .order_by(ViewObservation.observed_at, ViewObservation.id)
    )
    for key, at, views in rows:
        series[key].append((at, views))
    return dict(series)


def queue_view_spike_alerts(
    session: Session, org: Organisation, album: str, report: SpikeReport
) -> list[Alert]:
    """One alert per spiking photo per observation (and one per album surge), with the series."""
    created: list[Alert] = []
    for spike in report.spikes:
        last_at = spike.series[-1][0]
        key = dedupe_key("view-spike", spike.photo_key, last_at.isoformat())
        payload = {
            "type": "view-spike",
            "organisation": org.name,
            "album": album,
            "photo": spike.photo_key,
            "latest_increase": spike.latest_increase,
            "rate_per_hour": round(spike.rate_per_hour, 2),
            "album_norm_per_hour": round(spike.album_norm_per_hour, 2),
            "robust_z": round(spike.robust_z, 1),
            "ratio": round(spike.ratio, 1),
            "series": [[at.isoformat(), views] for at, views in spike.series],
        }
        alert = queue_alert(session, org, "view-spike", key, payload)
        created += [alert] if alert is not None else []
    if report.surge is not None:
        surge = report.surge
        key = dedupe_key("album-surge", album, utcnow().date().isoformat())
        payload = {
            "type": "album-surge",
            "organisation": org.name,
            "album": album,
            "median_rate_per_hour": round(surge.median_rate_per_hour, 2),
            "earlier_median_rate_per_hour": round(surge.earlier_median_rate_per_hour, 2),
            "total_increase": surge.total_increase,
        }
        alert = queue_alert(session, org, "album-surge", key, payload)
        created += [alert] if alert is not None else []
    session.flush()
    return created


def check_album_run(
    session: Session, org: Organisation, run_id: int, *, rule: SpikeRule | None = None
) -> AlbumCheck:
    """Record one crawl run's album readings, apply the view-spike rule to every album it read,
    and queue the alerts. Call `childguard.alerts.dispatch.deliver` to send them."""
    added, albums = record_album_views(session, org, run_id)
    check = AlbumCheck(organisation=org.name, run_id=run_id, observations_added=added)
    for album in sorted(albums):
        report = detect_spikes(album_series(session, org, album), rule)
        check.reports[album] = report
        alerts = queue_view_spike_alerts(session, org, album, report)
        session.flush()
        check.alert_ids += [a.id for a in alerts]
    return check


def monitor_album(
    watch: Watch,
    organisation: str,
    *,
    store_url: str | None = None,
    rule: SpikeRule | None = None,
    **crawl_options: Any,
) -> AlbumCheck:
    """Crawl an organisation's album watch once (no matching: the photos are its own), then
    record the view counts and check for spikes. `crawl_options` go to `run_crawl`."""
    from childguard.crawl.matching import no_matches
    from childguard.crawl.runner import CrawlError, run_crawl
    from childguard.store.db import open_store

    if watch.profile_for(urlsplit(watch.seeds[0]).hostname or "") is None:
        raise CrawlError(
            f"watch {watch.name!r} has no site profile for its album pages: add one with "
            "`item`, `item_image` and `item_views` selectors so the view counters can be read"
        )
    stats = run_crawl(watch, store_url=store_url, matcher=no_matches, **crawl_options)
    if stats.run_id is None:
        raise CrawlError(f"the crawl of {watch.name!r} recorded no run")
    store = open_store(store_url)
    try:
        with store.session() as session:
            org = get_organisation(session, organisation)
            return check_album_run(session, org, stats.run_id, rule=rule)
    finally:
        store.close()
