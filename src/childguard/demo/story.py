"""The core story, end to end on this machine: `run_demo(workdir) -> DemoResult`.

A scout group publishes a camp album. An image-sharing site re-posts some of the photos,
transformed, among many unrelated ones. With childguard the group registers its photos, the
crawler finds the re-posts and the group is alerted; when the site takes two down, a re-crawl
shows them `removed`; and a sudden jump in one photo's views on the group's own album page
raises a view-spike alert. Everything runs against two sites served on 127.0.0.1 and a SQLite
store in `workdir`; the user's own store is never touched.

Steps (each prints what it did):
1. build the album from benign photos (`.cache/photos` from `make photos`, else the bundled
   samples) and the sharing site;
2. serve both sites, and the organisation's webhook receiver;
3. create the organisation, register the album, create the two watches, crawl the album (view
   counts) and the sharing site (matches), print the sightings and the share of re-posts found;
4. write the HTML report;
5. remove two re-posts, re-crawl, show them `removed`; re-crawl the album, where one photo's
   views jumped, and show the view-spike alert and the webhook deliveries;
6. the hotline (`childguard.demo.hotline_story`): a report through the French form to the
   real service, its items deduplicated, the one matched to a demo known-abuse bank (hashes
   only, a benign stand-in) reviewed first by two analysts, and a second report of the same
   picture that inherits their assessment;
7. what follows the assessment (`childguard.demo.takedown_story`): the routes confirmed, a
   police bundle built, checked and handed over, a notice by email to the site's host, the
   takedown, the removal checks and the time to removal;
8. the organisation's own pages (`childguard.demo.org_story`): an organisation user, the
   album as an album monitor, and the service's scheduler crawling the sharing site, reading
   the album's views and delivering a view-spike alert by itself; `/org` shows the sightings
   and `/org/albums` the chart; the URL and the login are printed (in a terminal, the
   service stays up until Enter).
"""

from __future__ import annotations

import contextlib
import csv
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.table import Table

from childguard.alerts.dispatch import AlertTransport, queue_and_deliver
from childguard.alerts.webhook import RetryPolicy
from childguard.crawl.matching import StoreMatcher
from childguard.crawl.runner import run_crawl
from childguard.crawl.sightings import SightingView, list_sightings
from childguard.crawl.watch import SiteProfile, Watch
from childguard.crawl.watchstore import save_watch
from childguard.demo import ASSETS
from childguard.demo.hotline_story import HotlineResult, run_hotline
from childguard.demo.org_story import OrgResult, hold_in_terminal, run_org
from childguard.demo.receiver import WebhookReceiver
from childguard.demo.report import SightingRow, write_report
from childguard.demo.service import patched_environment
from childguard.demo.sites import AlbumSite, SharingSite, serving
from childguard.errors import ChildguardError
from childguard.pipeline.sources import IMAGE_SUFFIXES
from childguard.protect.albums import AlbumCheck, monitor_album
from childguard.protect.organisations import create_organisation, get_organisation
from childguard.protect.register import photos_for_entry, register_photos
from childguard.store.db import Store, open_store

ORGANISATION = "Demo Scout Group"
SPIKE_VIEWS = 180_000  # what the harvested photo gains between two checks
ALBUM_PROFILE = SiteProfile(item="figure.photo", item_image="img", item_views=".views")


class DemoError(ChildguardError):
    """The demo could not run (no photos, a site or a crawl failed); the message says why."""


@dataclass
class DemoResult:
    """What the demo found, for the CLI summary, the tests and the benchmark line."""

    workdir: Path
    store_url: str
    report_path: Path
    reposts: int
    found: list[str]  # file names of the album photos whose re-post was found
    missed: list[str]
    removed_posts: list[str]  # post ids the site took down
    removed_sightings: list[SightingView]  # their sightings, now `removed`
    wrongly_removed: list[SightingView]  # sightings of posts still online that were marked removed
    false_sightings: list[SightingView]  # sightings of photos the site did not re-post
    spike_photo: str
    spike_alerts: list[dict[str, Any]]
    webhook_deliveries: list[dict[str, Any]] = field(default_factory=list)
    transforms: dict[str, str] = field(default_factory=dict)  # album photo -> how re-posted
    thumbnails_found: list[str] = field(default_factory=list)  # re-posts found by thumbnail too
    hotline: HotlineResult | None = None  # step 6, the hotline chapter
    organisation: OrgResult | None = None  # step 8, the organisation's own pages
    elapsed_s: float = 0.0

    @property
    def share_found(self) -> float:
        return len(self.found) / self.reposts if self.reposts else 0.0


@dataclass(frozen=True)
class DemoPhotos:
    """Where the demo's photos come from: the album's and the unrelated ones."""

    album: list[Path]
    unrelated: list[Path]
    origin: str


def pick_photos(
    source: Path | None = None, *, album_size: int = 12, unrelated: int = 20
) -> DemoPhotos:
    """Photos for the demo: `source` (a folder, or one with a `manifest.csv` from
    `make photos`), else `.cache/photos` under the current folder, else the bundled samples."""
    candidates = [source] if source else [Path.cwd() / ".cache" / "photos", ASSETS]
    for folder in candidates:
        files = _photo_files(folder)
        if len(files) >= 2:
            n = min(album_size, len(files))
            return DemoPhotos(files[:n], files[n : n + unrelated], str(folder))
    raise DemoError(
        f"no photos found in {', '.join(str(c) for c in candidates)}: run `make photos`, or "
        "pass --photos with a folder of at least two JPEG or PNG photos"
    )


def _photo_files(folder: Path) -> list[Path]:
    manifest = folder / "manifest.csv"
    if manifest.is_file():
        with manifest.open(newline="") as fh:
            files = [folder / row["file"] for row in csv.DictReader(fh)]
        return [f for f in files if f.is_file()]
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in set(IMAGE_SUFFIXES) - {".png"} and not p.name.startswith(".")
    )


# --------------------------------------------------------------------------- the story


class _Story:
    def __init__(
        self, workdir: Path, out: Console, photos: DemoPhotos, reposts: int, synthetic: int
    ) -> None:
        self.workdir = workdir
        self.out = out
        self.photos = photos
        self.store_url = f"sqlite:///{workdir / 'childguard.db'}"
        self.store: Store = open_store(self.store_url)
        self.report_path = workdir / "report.html"
        self.receiver = WebhookReceiver()
        self.say(f"[bold]1. Building the album and the sharing site[/bold] in {workdir}")
        self.album = AlbumSite.build(
            workdir / "sites" / "album", photos.album, title="Camp 2024 - Demo Scout Group"
        )
        self.share = SharingSite.build(
            workdir / "sites" / "share",
            self.album.photos,
            reposts=min(reposts, len(self.album.photos)),
            unrelated=photos.unrelated,
            synthetic=synthetic,
        )
        self.say(
            f"   album: {len(self.album.photos)} photos from {photos.origin}; sharing site: "
            f"{len(self.share.posts)} posts in {len(self.share.galleries)} galleries, "
            f"{len(self.share.reposts)} of them re-posts of album photos:"
        )
        for post in sorted(self.share.reposts, key=lambda p: p.source or ""):
            self.say(f"     {post.source} re-posted {post.transform}")

    def say(self, text: str) -> None:
        self.out.print(text, highlight=False)

    @property
    def hosts(self) -> dict[str, list[str]]:
        return {self.album.host: ["127.0.0.1"], self.share.host: ["127.0.0.1"]}

    def crawl_options(self) -> dict[str, Any]:
        """The SSRF policy is lifted for the two demo hosts only (they resolve to 127.0.0.1)."""
        return {
            "store_url": self.store_url,
            "static_hosts": self.hosts,
            "settings_overrides": {"CHILDGUARD_ALLOW_PRIVATE_HOSTS": list(self.hosts)},
            "timeout_s": 120,
        }

    # -- step 3 -------------------------------------------------------------------------
    def set_up_organisation(self) -> None:
        self.say(f"[bold]3. {ORGANISATION} registers its album[/bold]")
        with self.store.session() as s:
            org = create_organisation(s, ORGANISATION, webhook_url=self.receiver.url)
            self.receiver.secret = org.webhook_secret or ""
            registered = 0
            for photo in self.album.photos:
                report = register_photos(
                    s, [photo.path], org, published_url=self.album.photo_url(photo)
                )
                if report.failed:
                    raise DemoError(f"could not register {photo.file_name}: {report.failed}")
                registered += len(report.registered)
        self.say(
            f"   {registered} photos registered (signatures only; no image bytes are stored); "
            f"alerts go to the webhook {self.receiver.url}"
        )
        self.album_watch = Watch(
            name="scouts-album",
            seeds=(self.album.url("/"),),
            max_depth=0,
            profiles={self.album.host: ALBUM_PROFILE},
            organisation=ORGANISATION,
            download_delay=0,
        )
        self.share_watch = Watch(
            name="picshare",
            seeds=(self.share.url("/"),),
            max_depth=6,
            max_pages=300,
            download_delay=0,
            concurrency_per_domain=8,
        )
        save_watch(self.store, self.album_watch)
        save_watch(self.store, self.share_watch)
        self.say(
            f"   watches: {self.album_watch.name} ({self.album.url('/')}, view counters) and "
            f"{self.share_watch.name} ({self.share.url('/')})"
        )

    def check_album(self) -> AlbumCheck:
        check = monitor_album(
            self.album_watch, ORGANISATION, hash_workers=0, **self.crawl_options()
        )
        self.say(
            f"   album checked: {check.observations_added} view counts recorded, "
            f"{len(check.spikes)} spike(s)"
        )
        return check

    def crawl_share(self, label: str) -> None:
        started = time.perf_counter()
        stats = run_crawl(
            self.share_watch, matcher=StoreMatcher(self.store_url), **self.crawl_options()
        )
        self.say(
            f"   {label}: {stats.pages} pages, {stats.images} images ({stats.images_hashed} "
            f"hashed, {stats.images_cached + stats.images_not_modified} from the cache), "
            f"{stats.new_sightings} new sightings, {stats.sightings_removed} marked removed, "
            f"{time.perf_counter() - started:.1f}s"
        )
        if stats.pages == 0:
            raise DemoError(f"the crawl of {self.share.url('/')} fetched no page")

    def send_alerts(self) -> int:
        with self.store.session() as s:
            org = get_organisation(s, ORGANISATION)
            policy = RetryPolicy(attempts=3, base_delay_s=0.2, timeout_s=5)
            done = queue_and_deliver(s, AlertTransport(webhook_policy=policy), organisations=[org])
        if done.delivery is not None and done.delivery.failed:
            raise DemoError(f"alert delivery failed: {done.delivery.failed}")
        return len(done.queued)

    def rows(self) -> list[SightingRow]:
        views = list_sightings(self.store, organisation=ORGANISATION)
        names: dict[int, str] = {}
        with self.store.session() as s:
            for v in views:
                if v.entry_id is not None and v.entry_id not in names:
                    photos = photos_for_entry(s, v.entry_id)
                    names[v.entry_id] = photos[0].file_name if photos else "?"
        rows = [SightingRow(v, names.get(v.entry_id or -1, "?")) for v in views]
        return sorted(rows, key=lambda r: (r.photo, r.sighting.page_url, r.sighting.image_url))

    def sightings_table(self, rows: Sequence[SightingRow], title: str) -> Table:
        table = Table(title=title, title_justify="left")
        for column in ("page", "image URL", "matched photo", "distance", "first seen", "status"):
            table.add_column(column, overflow="fold")
        for r in rows:
            s = r.sighting
            table.add_row(
                urlsplit(s.page_url).path,
                urlsplit(s.image_url).path,
                r.photo,
                str(s.distance),
                s.first_seen.strftime("%H:%M:%S"),
                f"[red]{s.status}[/red]" if s.status == "online" else s.status,
            )
        return table

    def scored(
        self, rows: Sequence[SightingRow]
    ) -> tuple[list[str], list[str], list[SightingView]]:
        """(album photos whose re-post was found, those missed, sightings of no re-post)."""
        by_url: dict[str, str] = {}
        for post in self.share.reposts:
            for kind in ("i", "t"):
                by_url[self.share.url(f"/{kind}/{post.id}.jpg")] = post.source or ""
        found = {r.photo for r in rows if by_url.get(r.sighting.image_url) == r.photo}
        reposted = sorted(p.source or "" for p in self.share.reposts)
        false = [r.sighting for r in rows if by_url.get(r.sighting.image_url) != r.photo]
        return sorted(found), [p for p in reposted if p not in found], false

    def thumbnails_found(self, rows: Sequence[SightingRow]) -> list[str]:
        """Album photos whose re-post's 240-pixel thumbnail matched as well."""
        thumbs = {self.share.url(f"/t/{p.id}.jpg"): p.source for p in self.share.reposts}
        return sorted({r.photo for r in rows if thumbs.get(r.sighting.image_url) == r.photo})


def run_demo(
    workdir: Path,
    *,
    out: Console | None = None,
    photos: Path | None = None,
    album_size: int = 12,
    reposts: int = 8,
    unrelated: int = 20,
    synthetic: int = 30,
) -> DemoResult:
    """Run the whole story in `workdir` (created; its store and sites are the demo's own)."""
    out = out or Console()
    started = time.perf_counter()
    workdir.mkdir(parents=True, exist_ok=True)
    if (workdir / "childguard.db").exists():
        raise DemoError(f"{workdir} already holds a demo store; use an empty work folder")
    picked = pick_photos(photos, album_size=album_size, unrelated=unrelated)
    with isolated_environment(workdir):
        return _run_story(_Story(workdir, out, picked, reposts, synthetic), started)


@contextlib.contextmanager
def isolated_environment(workdir: Path) -> Iterator[None]:
    """Point CHILDGUARD_HOME and CHILDGUARD_DB at the work folder while the demo runs, so
    nothing (indexes, defaults, the crawl processes) can reach the user's own store."""
    with patched_environment(
        {
            "CHILDGUARD_HOME": str(workdir / "home"),
            "CHILDGUARD_DB": f"sqlite:///{workdir / 'childguard.db'}",
        }
    ):
        yield


def _run_story(story: _Story, started: float) -> DemoResult:
    try:
        with serving(story.album, story.share):
            story.receiver.start()
            story.say(
                f"[bold]2. Serving[/bold] {story.album.url('/')} and {story.share.url('/')} "
                "on 127.0.0.1"
            )
            return _run_steps(story, started)
    finally:
        story.receiver.stop()
        story.store.close()


def _run_steps(story: _Story, started: float) -> DemoResult:
    say = story.say
    story.set_up_organisation()
    story.check_album()  # the first view counts: the series starts here
    story.crawl_share("crawl of the sharing site")
    alerts = story.send_alerts()
    rows = story.rows()
    found, missed, false = story.scored(rows)
    thumbnails = story.thumbnails_found(rows)
    story.out.print(story.sightings_table(rows, f"Sightings of {ORGANISATION}'s photos"))
    reposted = len(story.share.reposts)
    say(
        f"   re-posts found: [bold]{len(found)} of {reposted}[/bold] "
        f"({100 * len(found) / max(1, reposted):.0f}%)"
        + (f"; missed: {', '.join(missed)}" if missed else "")
        + f"; sightings of photos that were not re-posted: {len(false)}"
    )
    say(f"   {alerts} sighting alert(s) sent to the webhook")

    say("[bold]4. Report[/bold]")
    write_report(story.report_path, ORGANISATION, rows)
    say(f"   written to {story.report_path} (URLs and evidence only, no images)")

    say("[bold]5. The site removes two re-posts; the album's views move[/bold]")
    found_posts = [p for p in story.share.reposts if p.source in found]
    taken_down = sorted(found_posts, key=lambda p: p.source or "")[:2]
    story.share.remove([p.id for p in taken_down])
    say(f"   removed from the sharing site: {', '.join(f'{p.source}' for p in taken_down)}")
    spike = story.album.photos[1 % len(story.album.photos)]
    story.album.add_views({p.file_name: 3 + 2 * i for i, p in enumerate(story.album.photos)})
    story.check_album()  # a normal day: every photo gains a few views
    story.album.add_views({p.file_name: 4 + i for i, p in enumerate(story.album.photos)})
    story.album.add_views({spike.file_name: SPIKE_VIEWS})
    story.crawl_share("re-crawl of the sharing site")
    check = story.check_album()  # the harvested photo's views jumped

    rows = story.rows()
    gone_ids = {p.id for p in taken_down}

    def of_removed_post(v: SightingView) -> bool:
        return any(f"/{k}/{pid}.jpg" in v.image_url for pid in gone_ids for k in ("i", "t"))

    removed = [r.sighting for r in rows if of_removed_post(r.sighting)]
    story.out.print(
        story.sightings_table(
            [r for r in rows if of_removed_post(r.sighting)], "Sightings of the removed re-posts"
        )
    )
    wrongly = [
        r.sighting
        for r in rows
        if r.sighting.status == "removed" and not of_removed_post(r.sighting)
    ]
    story.send_alerts()
    spike_alerts = story.receiver.of_type("view-spike")
    for alert in spike_alerts:
        say(
            f"   [bold red]view-spike alert[/bold red]: {alert['photo']} gained "
            f"{alert['latest_increase']:,} views ({alert['ratio']}x the album's norm)"
        )
        for at, views in alert["series"]:
            say(f"     {at[:19]}  {views:>9,} views")
    if not check.spikes:
        say("   no view spike was detected")
    write_report(story.report_path, ORGANISATION, rows, spike_alerts)
    deliveries = list(story.receiver.received)
    kinds = sorted({d.get("type", "?") for d in deliveries})
    say(
        f"   the webhook received {len(deliveries)} signed alert(s) ({', '.join(kinds)}); "
        f"{story.receiver.rejected} refused; report updated: {story.report_path}"
    )
    hotline = run_hotline(
        story.store,
        story.store_url,
        story.workdir,
        story.photos.unrelated[:3] if len(story.photos.unrelated) >= 3 else story.photos.album,
        story.out,
    )
    photos = story.album.photos
    own_pages = run_org(
        story.store,
        story.store_url,
        story.workdir,
        organisation=ORGANISATION,
        album=story.album,
        share=story.share,
        share_watch=story.share_watch,
        profile=ALBUM_PROFILE,
        receiver=story.receiver,
        out=story.out,
        spike_photo=photos[2 % len(photos)].file_name,
        hold=hold_in_terminal,
    )
    return DemoResult(
        workdir=story.workdir,
        store_url=story.store_url,
        report_path=story.report_path,
        reposts=reposted,
        found=found,
        missed=missed,
        removed_posts=sorted(gone_ids),
        removed_sightings=removed,
        wrongly_removed=wrongly,
        false_sightings=false,
        spike_photo=story.album.photo_url(spike),
        spike_alerts=spike_alerts,
        webhook_deliveries=deliveries,
        elapsed_s=time.perf_counter() - started,
        transforms={p.source or "": p.transform or "" for p in story.share.reposts},
        thumbnails_found=thumbnails,
        hotline=hotline,
        organisation=own_pages,
    )
