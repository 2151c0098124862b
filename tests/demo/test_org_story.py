"""The demo's organisation chapter against the real service: the demo's two sites on
127.0.0.1, the album registered for the organisation, and with no command typed the service's
scheduler crawls the sharing site, reads the album's views, queues and delivers the view-spike
alert; the organisation user sees its sightings on `/org` and the chart on `/org/albums`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from childguard.crawl.watch import Watch
from childguard.crawl.watchstore import get_watch, save_watch
from childguard.demo import ASSETS
from childguard.demo.org_story import ORG_USER, USUAL_RECHECK, OrgResult, run_org
from childguard.demo.receiver import WebhookReceiver
from childguard.demo.sites import AlbumSite, SharingSite, serving
from childguard.demo.story import ALBUM_PROFILE, isolated_environment
from childguard.jobs import schedule
from childguard.protect.organisations import create_organisation
from childguard.protect.register import register_photos
from childguard.store import open_store

pytestmark = pytest.mark.slow

ORGANISATION = "Demo Scout Group"


@pytest.fixture(scope="module")
def chapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrgResult, str, Path]]:
    workdir = tmp_path_factory.mktemp("org-demo")
    url = f"sqlite:///{workdir / 'childguard.db'}"
    photos = sorted(ASSETS.glob("*.jpg"))
    album = AlbumSite.build(workdir / "sites" / "album", photos, title="Camp")
    share = SharingSite.build(
        workdir / "sites" / "share", album.photos, reposts=2, synthetic=4, galleries=1
    )
    console = Console(record=True, width=220)
    receiver = WebhookReceiver().start()
    with isolated_environment(workdir), serving(album, share):
        store = open_store(url)
        try:
            with store.session() as s:
                org = create_organisation(s, ORGANISATION, webhook_url=receiver.url)
                receiver.secret = org.webhook_secret or ""
                for photo in album.photos:
                    register_photos(s, [photo.path], org, published_url=album.photo_url(photo))
            share_watch = Watch(
                name="picshare", seeds=(share.url("/"),), max_depth=4, download_delay=0
            )
            save_watch(store, share_watch)
            result = run_org(
                store,
                url,
                workdir,
                organisation=ORGANISATION,
                album=album,
                share=share,
                share_watch=share_watch,
                profile=ALBUM_PROFILE,
                receiver=receiver,
                out=console,
            )
        finally:
            store.close()
            receiver.stop()
    yield result, console.export_text(), workdir


def test_the_scheduler_crawled_the_sharing_site_and_found_the_reposts(
    chapter: tuple[OrgResult, str, Path],
) -> None:
    result, text, workdir = chapter
    assert result.crawled == ["picshare"]
    assert result.sightings >= 2
    assert result.sighted_photos == ["camp-01.jpg", "camp-02.jpg"]
    # The sightings show on the organisation's own page, named by their photos.
    assert "camp-01.jpg" in result.org_page and "camp-02.jpg" in result.org_page
    # The watch is back to its usual interval.
    store = open_store(f"sqlite:///{workdir / 'childguard.db'}")
    try:
        assert get_watch(store, "picshare").recheck_every == USUAL_RECHECK
        runs = schedule.recent_runs(store, "crawls", limit=100)
        assert any(
            c.get("watch") == "picshare" for r in runs for c in (r.summary or {}).get("crawls", [])
        )
    finally:
        store.close()
    assert "8. Demo Scout Group on its own pages" in text


def test_the_album_spike_was_alerted_by_the_service_and_charted(
    chapter: tuple[OrgResult, str, Path],
) -> None:
    result, _text, _ = chapter
    assert result.album_checks == 4
    (alert,) = result.spike_alerts
    assert alert["photo"] == result.spike_photo
    assert alert["latest_increase"] >= 240_000
    assert result.spike_photo.rsplit("/", 1)[1] in result.albums_page
    assert "<svg" in result.albums_page
    assert result.spikes_found == [result.spike_photo]  # found by the scheduler's own check
    assert {"crawls", "albums", "alerts"} <= set(result.task_status)


def test_the_chapter_prints_the_url_and_the_login(chapter: tuple[OrgResult, str, Path]) -> None:
    result, text, _ = chapter
    assert f"{result.url}/org" in text
    assert ORG_USER in text and result.password in text
