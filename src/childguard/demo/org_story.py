# Owns the demo's organisation chapter: the service watches by itself, and the organisation
# sees its sightings and its album's views on its own pages.
"""The organisation's own pages, kept up by the service's scheduler: `run_org(...) -> OrgResult`.

1. an organisation user (`org-admin` of the demo organisation) is made, and the real service
   starts (`create_app` under uvicorn on a free port) with its scheduler looking at the
   schedule every fraction of a second; scheduled crawls may reach the two demo hosts on
   127.0.0.1 only (`crawl_private_hosts`, `crawl_static_hosts`);
2. the organisation's album page becomes one of its album monitors
   (`childguard.protect.sighting_actions.add_album_monitor`, re-checked every few seconds for
   the demo) and the sharing site's watch is made due: with no command typed, the `crawls`
   task crawls the sharing site and records the sightings, and the `albums` task reads the
   album's view counters;
3. the album's views move between the scheduler's checks: a normal day, then one photo jumps;
   the `albums` task queues the view-spike alert and the `alerts` task delivers it to the
   organisation's webhook;
4. the chapter signs in as the organisation user and checks its pages, `/org` (the sightings)
   and `/org/albums` (the views chart with the spike), and the API behind them; it prints the
   URL and the login. `hold` (the demo passes one when it runs in a terminal) keeps the
   service up while someone looks at it.

Both watches go back to their usual re-check interval before the service stops.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from childguard.accounts.users import create_user
from childguard.crawl.watch import SiteProfile, Watch
from childguard.crawl.watchstore import save_watch
from childguard.demo.receiver import WebhookReceiver
from childguard.demo.service import running_service
from childguard.demo.sites import AlbumSite, SharingSite
from childguard.errors import ChildguardError
from childguard.jobs import schedule
from childguard.protect.organisations import get_organisation
from childguard.protect.sighting_actions import add_album_monitor
from childguard.service import Settings
from childguard.store.db import Store

ORG_USER = "scout-leader"
QUICK_RECHECK = 2  # seconds between the scheduler's checks of a watch during the chapter
USUAL_RECHECK = 6 * 3600
WAIT_SECONDS = 120.0
SPIKE_VIEWS = 240_000


class OrgDemoError(ChildguardError):
    """A step of the organisation chapter did not happen; the message says which."""


@dataclass
class OrgResult:
    """What the organisation chapter did, for the summary and the tests."""

    url: str = ""
    username: str = ORG_USER
    password: str = ""
    sightings: int = 0  # the sightings the organisation's API lists
    sighted_photos: list[str] = field(default_factory=list)  # their photos' file names
    crawled: list[str] = field(default_factory=list)  # watches the crawls task crawled
    album_checks: int = 0  # the albums task's checks that read the views
    spike_photo: str = ""
    spikes_found: list[str] = field(default_factory=list)  # the albums task's check found these
    spike_alerts: list[dict[str, Any]] = field(default_factory=list)  # delivered by the service
    org_page: str = ""  # /org as the organisation user saw it
    albums_page: str = ""  # /org/albums
    task_status: dict[str, str] = field(default_factory=dict)  # task -> its last run's status


def org_settings(store_url: str, home: Path, hosts: list[str], **overrides: Any) -> Settings:
    """The chapter's service: the demo's store and home, the scheduler quick, and scheduled
    crawls allowed to reach the demo hosts (and only them) on 127.0.0.1."""
    values: dict[str, Any] = {
        "db_url": store_url,
        "data_dir": home,
        "index_dir": home / "index",
        "log_level": "WARNING",
        "crawl_poll_seconds": 1.0,
        "album_poll_seconds": 1.0,
        "alert_poll_seconds": 1.0,
        "scheduler_poll_seconds": 0.2,
        "crawl_hash_workers": 0,
        "crawl_timeout_seconds": 300.0,
        "crawl_static_hosts": tuple(f"{h}=127.0.0.1" for h in hosts),
        "crawl_private_hosts": tuple(hosts),
        **overrides,
    }
    return Settings(**values)


def _until(check: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise OrgDemoError(f"the service did not {what} within {timeout:.0f}s")
        time.sleep(0.2)


def _runs_since(store: Store, task: str, after: int) -> list[schedule.RunInfo]:
    return [r for r in schedule.recent_runs(store, task, limit=50) if r.id > after]


def _last_run_id(store: Store, task: str) -> int:
    runs = schedule.recent_runs(store, task, limit=1)
    return runs[0].id if runs else 0


class _Chapter:
    def __init__(
        self,
        store: Store,
        organisation: str,
        album: AlbumSite,
        share_watch: Watch,
        profile: SiteProfile,
        receiver: WebhookReceiver,
        out: Console,
    ) -> None:
        self.store = store
        self.organisation = organisation
        self.album = album
        self.share_watch = share_watch
        self.profile = profile
        self.receiver = receiver
        self.out = out
        self.result = OrgResult(password=secrets.token_urlsafe(12))
        with store.session() as s:
            org = get_organisation(s, organisation)
            s.expunge(org)
        self.org = org
        self.album_watch: Watch | None = None
        self.checks_after = 0

    def say(self, text: str) -> None:
        self.out.print(text, highlight=False)

    def album_monitor(self, recheck: int) -> Watch:
        assert self.profile.item is not None and self.profile.item_views is not None
        return add_album_monitor(
            self.store,
            self.org,
            self.album.url("/"),
            item=self.profile.item,
            item_views=self.profile.item_views,
            item_image=self.profile.item_image,
            recheck_every=recheck,
            actor=f"user:{ORG_USER}",
        )

    def wait_for_check(self) -> dict[str, Any]:
        """The next albums round that read this album's views."""
        assert self.album_watch is not None
        name = self.album_watch.name

        def read() -> dict[str, Any] | None:
            for run in _runs_since(self.store, "albums", self.checks_after):
                for check in (run.summary or {}).get("albums", []):
                    if check.get("watch") == name and check.get("observations_added"):
                        self.checks_after = run.id
                        return dict(check)
            return None

        check: dict[str, Any] = _until(read, "check the album's view counters")
        self.result.album_checks += 1
        return check

    def crawl_share(self) -> dict[str, Any]:
        """Make the sharing site's watch due; the crawls task crawls it by itself."""
        after = _last_run_id(self.store, "crawls")
        save_watch(self.store, replace(self.share_watch, recheck_every=0), replace=True)
        name = self.share_watch.name

        def crawled() -> dict[str, Any] | None:
            for run in _runs_since(self.store, "crawls", after):
                for crawl in (run.summary or {}).get("crawls", []):
                    if crawl.get("watch") == name:
                        if crawl.get("problem"):
                            raise OrgDemoError(
                                f"the scheduled crawl of {name} failed: {crawl['problem']}"
                            )
                        return dict(crawl)
                if run.status == "failed" and run.error and name in run.error:
                    raise OrgDemoError(f"the scheduled crawl failed: {run.error}")
            return None

        try:
            found: dict[str, Any] = _until(crawled, f"crawl {_share_hint(self.share_watch)}")
        finally:
            save_watch(
                self.store, replace(self.share_watch, recheck_every=USUAL_RECHECK), replace=True
            )
        self.result.crawled.append(name)
        return found


def _share_hint(watch: Watch) -> str:
    return watch.seeds[0]


def run_org(
    store: Store,
    store_url: str,
    workdir: Path,
    *,
    organisation: str,
    album: AlbumSite,
    share: SharingSite,
    share_watch: Watch,
    profile: SiteProfile,
    receiver: WebhookReceiver,
    out: Console,
    spike_photo: str | None = None,
    hold: Callable[[OrgResult], None] | None = None,
) -> OrgResult:
    """Run the chapter against the demo's store and its served sites (see the module doc)."""
    chapter = _Chapter(store, organisation, album, share_watch, profile, receiver, out)
    result = chapter.result
    say = chapter.say
    say(f"[bold]8. {organisation} on its own pages; the service watches by itself[/bold]")
    user = create_user(
        store,
        ORG_USER,
        result.password,
        actor="demo",
        roles=("org-admin",),
        organisation_id=chapter.org.id,
        display_name="Scout leader",
    )
    hosts = [album.host, share.host]
    settings = org_settings(store_url, workdir / "home", hosts)
    with running_service(settings) as base:
        result.url = base
        say(f"   the service runs at {base}; {user.username} belongs to {organisation}")
        with httpx.Client(base_url=base, timeout=30) as client:
            signed = client.post(
                "/v1/session", json={"username": ORG_USER, "password": result.password}
            )
            if signed.status_code != 200:
                raise OrgDemoError(f"the organisation user could not sign in: {signed.text}")
            _watch(chapter, out)
            _views(chapter, spike_photo)
            _pages(chapter, client)
        result.task_status = {
            s.task: s.last_run.status for s in schedule.task_states(store) if s.last_run
        }
        say(
            f"   open [bold]{base}/org[/bold] and sign in as [bold]{ORG_USER}[/bold] with the "
            f"password [bold]{result.password}[/bold]: the sightings are on {base}/org/sightings, "
            f"the views chart on {base}/org/albums (a supervisor sees the scheduler's runs on "
            f"{base}/tasks)"
        )
        if hold is not None:
            hold(result)
    return result


def hold_in_terminal(result: OrgResult) -> None:
    """Keep the service up until Enter, when the demo runs in a terminal; else return."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return
    with contextlib.suppress(EOFError, KeyboardInterrupt):
        input(f"   the service stays up at {result.url}/org; press Enter to stop it ")


def _watch(chapter: _Chapter, out: Console) -> None:
    say = chapter.say
    chapter.checks_after = _last_run_id(chapter.store, "albums")
    chapter.album_watch = chapter.album_monitor(QUICK_RECHECK)
    say(
        f"   album monitor {chapter.album_watch.name} on {chapter.album.url('/')}; the "
        f"sharing site's watch {chapter.share_watch.name} is due"
    )
    crawl = chapter.crawl_share()
    say(
        f"   the crawls task crawled {crawl.get('watch')}: {crawl.get('pages')} pages, "
        f"{crawl.get('images')} images, {crawl.get('new_sightings')} new sightings"
        + (f"; problem: {crawl['problem']}" if crawl.get("problem") else "")
    )


def _views(chapter: _Chapter, spike_photo: str | None) -> None:
    say = chapter.say
    album = chapter.album
    photos = album.photos
    spike = next((p for p in photos if p.file_name == spike_photo), photos[-1])
    chapter.result.spike_photo = album.photo_url(spike)
    first = chapter.wait_for_check()
    say(f"   the albums task read {first['observations_added']} view counters")
    album.add_views({p.file_name: 2 + i for i, p in enumerate(photos)})
    chapter.wait_for_check()
    album.add_views({p.file_name: 3 + i for i, p in enumerate(photos)})
    chapter.wait_for_check()
    album.add_views({p.file_name: 2 + i for i, p in enumerate(photos)})
    album.add_views({spike.file_name: SPIKE_VIEWS})
    check = chapter.wait_for_check()
    chapter.result.spikes_found = list(check.get("spikes") or [])
    say(
        f"   {spike.file_name} gained {SPIKE_VIEWS:,} views; the albums task found "
        f"{len(check.get('spikes') or [])} spike(s)"
    )
    url = chapter.result.spike_photo

    def delivered() -> list[dict[str, Any]]:
        return [a for a in chapter.receiver.of_type("view-spike") if a.get("photo") == url]

    chapter.result.spike_alerts = _until(delivered, "deliver the view-spike alert")
    assert chapter.album_watch is not None
    chapter.album_watch = chapter.album_monitor(USUAL_RECHECK)
    say(f"   the alerts task delivered the view-spike alert for {spike.file_name} to the webhook")


def _pages(chapter: _Chapter, client: httpx.Client) -> None:
    result = chapter.result
    sightings = client.get("/v1/organisation/sightings", params={"limit": 500})
    if sightings.status_code != 200:
        raise OrgDemoError(f"/v1/organisation/sightings answered {sightings.status_code}")
    rows = sightings.json().get("sightings", [])
    result.sightings = len(rows)
    result.sighted_photos = sorted({_photo_name(r) for r in rows} - {""})
    for path, attr in (("/org", "org_page"), ("/org/albums", "albums_page")):
        page = client.get(path)
        if page.status_code != 200:
            raise OrgDemoError(f"{path} answered {page.status_code} to the organisation user")
        setattr(result, attr, page.text)
    chapter.say(
        f"   /org lists the organisation's sightings ({result.sightings}, of "
        f"{len(result.sighted_photos)} photos); /org/albums charts each photo's views"
    )


def _photo_name(row: dict[str, Any]) -> str:
    photo = row.get("photo") or {}
    if isinstance(photo, dict):
        return str(photo.get("file_name") or "")
    return str(row.get("file_name") or "")
