"""The demo story end to end on a small album (the bundled photos): real sites on 127.0.0.1,
real Scrapy crawls, a real SQLite store and a real webhook receiver."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from childguard.cli import EXIT_USAGE, app
from childguard.crawl.watchstore import get_watch
from childguard.demo import ASSETS
from childguard.demo.hotline_story import DEMO_BANK, HotlineResult
from childguard.demo.org_story import ORG_USER, USUAL_RECHECK, OrgResult
from childguard.demo.story import SPIKE_VIEWS, DemoResult, run_demo
from childguard.hotline.assessments import HOTLINE_BANK
from childguard.jobs import schedule
from childguard.store import open_store
from childguard.store.crawl_models import Sighting
from childguard.store.hotline_models import Assessment, Item, Report
from childguard.store.models import AuditEvent
from childguard.store.protect_models import Alert, ViewObservation

pytestmark = pytest.mark.slow

BASE64_RUN = re.compile(r"[A-Za-z0-9+/=]{120,}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoResult, str]]:
    workdir = tmp_path_factory.mktemp("demo")
    console = Console(record=True, width=160)
    env_before = {k: os.environ.get(k) for k in ("CHILDGUARD_HOME", "CHILDGUARD_DB")}
    result = run_demo(
        workdir, out=console, photos=ASSETS, album_size=4, reposts=3, unrelated=0, synthetic=8
    )
    # The demo's store is its own; the environment pointing at it is restored afterwards.
    assert result.store_url == f"sqlite:///{workdir / 'childguard.db'}"
    assert {k: os.environ.get(k) for k in env_before} == env_before
    yield result, console.export_text()


def test_every_transformed_repost_is_found_and_nothing_else(demo: tuple[DemoResult, str]) -> None:
    result, text = demo
    assert result.reposts == 3
    assert result.share_found == 1.0 and result.missed == []
    assert result.false_sightings == []
    assert "re-posts found: 3 of 3 (100%)" in text
    assert "Sightings of Demo Scout Group's photos" in text


def test_two_removed_reposts_show_removed_and_the_rest_stay_online(
    demo: tuple[DemoResult, str],
) -> None:
    result, _ = demo
    assert len(result.removed_posts) == 2
    assert result.removed_sightings, "the removed re-posts had sightings"
    assert {s.status for s in result.removed_sightings} == {"removed"}
    assert all(s.removed_at is not None for s in result.removed_sightings)
    assert result.wrongly_removed == []
    store = open_store(result.store_url)
    try:
        with store.session() as s:
            online = s.scalars(select(Sighting).where(Sighting.status == "online")).all()
    finally:
        store.close()
    assert online, "the re-post that was not taken down is still online"
    assert not any(pid in o.image_url for o in online for pid in result.removed_posts)


def test_the_spiking_album_photo_raises_one_view_spike_alert_with_its_series(
    demo: tuple[DemoResult, str],
) -> None:
    result, text = demo
    assert len(result.spike_alerts) == 1
    alert = result.spike_alerts[0]
    assert alert["photo"] == result.spike_photo
    views = [v for _, v in alert["series"]]
    assert len(views) == 3 and views == sorted(views)
    assert views[-1] - views[-2] == alert["latest_increase"] >= SPIKE_VIEWS
    assert "view-spike alert" in text
    store = open_store(result.store_url)
    try:
        with store.session() as s:
            linked = s.scalars(
                select(ViewObservation.protected_photo_id).where(
                    ViewObservation.photo_key == result.spike_photo
                )
            ).all()
    finally:
        store.close()
    # the series is tied to the registered photo; step 8's scheduled checks add readings
    assert len(linked) >= 3 and None not in linked


def test_alerts_were_delivered_signed_and_hold_no_image_bytes(
    demo: tuple[DemoResult, str],
) -> None:
    result, _ = demo
    kinds = [d["type"] for d in result.webhook_deliveries]
    assert kinds.count("view-spike") == 1
    assert kinds.count("sighting") >= result.reposts  # one per new sighting, not per re-check
    photos = [p.read_bytes() for p in sorted(ASSETS.glob("*.jpg"))]
    store = open_store(result.store_url)
    try:
        with store.session() as s:
            alerts = s.scalars(select(Alert)).all()
    finally:
        store.close()
    assert {a.status for a in alerts} == {"sent"}
    assert result.organisation is not None  # step 8 ran
    assert len(alerts) == len(result.webhook_deliveries) + len(result.organisation.spike_alerts)
    for payload in [a.payload for a in alerts] + result.webhook_deliveries:
        text = json.dumps(payload)
        assert len(text) < 4000
        assert BASE64_RUN.search(text) is None and "data:image" not in text
        raw = text.encode()
        assert not any(photo[200:264] in raw for photo in photos)
    for payload in result.webhook_deliveries:
        if payload["type"] == "sighting":
            assert payload["page_url"].startswith("http://pics.share.test:")
            assert payload["image_url"] and payload["first_seen"]
            assert payload["match"]["file_name"].startswith("camp-")


def test_the_report_lists_the_sightings_as_text_only(demo: tuple[DemoResult, str]) -> None:
    result, _ = demo
    html = result.report_path.read_text()
    assert "<img" not in html.lower() and "data:image" not in html
    assert html.count('<tr class="removed">') == len(result.removed_sightings)
    assert "/p/" in html and "distance" in html
    assert f"+{result.spike_alerts[0]['latest_increase']} views" in html


def test_the_cli_refuses_a_workdir_that_already_holds_a_demo(
    demo: tuple[DemoResult, str], tmp_path: Path
) -> None:
    result, _ = demo
    runner = CliRunner()
    reused = runner.invoke(app, ["demo", "--workdir", str(result.workdir)])
    assert reused.exit_code == EXIT_USAGE
    assert "already holds a demo store" in flat(reused.output)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    not_dir = runner.invoke(app, ["demo", "--workdir", str(a_file)])
    assert not_dir.exit_code == EXIT_USAGE and "is not a folder" in flat(not_dir.output)
    no_photos = runner.invoke(
        app, ["demo", "--workdir", str(tmp_path / "w"), "--photos", str(tmp_path / "none")]
    )
    assert no_photos.exit_code == EXIT_USAGE and "no photos found" in flat(no_photos.output)


def flat(text: str) -> str:
    """Console output with Rich's line wrapping undone."""
    return " ".join(text.split())


# The hotline (steps 6-7) and the organisation's pages (step 8) are chapters of the one demo run
# above; their checks read its result rather than running the chapters again.


@pytest.fixture(scope="module")
def hotline_chapter(demo: tuple[DemoResult, str]) -> tuple[HotlineResult, str, str]:
    result, text = demo
    assert result.hotline is not None
    return result.hotline, text, result.store_url


@pytest.fixture(scope="module")
def org_chapter(demo: tuple[DemoResult, str]) -> tuple[OrgResult, str, Path]:
    result, text = demo
    assert result.organisation is not None
    return result.organisation, text, result.workdir


def test_the_report_came_through_the_french_form_and_its_items_are_deduplicated(
    hotline_chapter: tuple[HotlineResult, str, str],
) -> None:
    result, text, url = hotline_chapter
    assert "« Merci, votre signalement a été reçu »" in text
    assert "hashes only; a benign stand-in" in text
    store = open_store(url)
    try:
        with store.session() as s:
            reports = s.scalars(select(Report).order_by(Report.id)).all()
            assert [(r.channel, r.language, r.reporter) for r in reports] == [
                ("web", "fr", None),
                ("web", "fr", None),
            ]
            items = s.scalars(select(Item).order_by(Item.id)).all()
    finally:
        store.close()
    # Three pictures; the same bytes under a second name and the directly reported photo
    # folded into their items; two re-encoded copies linked to the first picture.
    assert (result.reports, result.items, result.pictures) == (2, 5, 3)
    assert (result.exact_folded, result.near_folded) == (2, 2)
    assert [i.duplicate_of for i in items] == [None, items[0].id, None, None, items[0].id]
    assert all(i.evidence_path for i in items)  # every item's bytes sealed as evidence
    assert set(result.url_states.values()) <= {"in-review", "assessed"}


def test_the_matched_item_is_first_and_two_votes_make_it_final(
    hotline_chapter: tuple[HotlineResult, str, str],
) -> None:
    result, _, url = hotline_chapter
    assert result.matched_item is not None
    assert result.first_in_queue == result.matched_item
    assert result.vote_statuses == ["recorded", "final"]
    assert result.final_outcome == "baseline"
    store = open_store(url)
    try:
        with store.session() as s:
            item = s.get(Item, result.matched_item)
            assert item is not None and item.state == "assessed" and item.priority == 0
            banks = {m["bank_name"] for m in item.matches or []}
            # the demo's known-abuse stand-in; the picture is also one of the scouts' photos
            assert DEMO_BANK in banks and banks <= {DEMO_BANK, "protected:Demo Scout Group"}
            kinds = s.scalars(
                select(Assessment.kind).where(Assessment.item_id == item.id).order_by(Assessment.id)
            ).all()
            assert kinds == ["vote", "vote", "final"]
            reveals = s.scalars(
                select(AuditEvent).where(AuditEvent.action == "hotline.reveal")
            ).all()
            assert [r.object_id for r in reveals] == [str(item.id)]
    finally:
        store.close()


def test_the_second_report_inherits_and_adds_no_review_work(
    hotline_chapter: tuple[HotlineResult, str, str],
) -> None:
    result, text, url = hotline_chapter
    assert result.second_item_state == "inherited" and result.second_url_state == "assessed"
    assert result.queue_after_second == result.queue_before_second
    assert result.inherited == 2 and result.inherited_share == pytest.approx(2 / 5)
    store = open_store(url)
    try:
        with store.session() as s:
            copy = s.scalars(
                select(Assessment).where(Assessment.item_id == result.second_item)
            ).one()
            assert copy.kind == "inherited" and copy.outcome == "baseline"
            assert copy.inherited_from is not None
            second = s.get(Item, result.second_item)
            assert second is not None
            banks = {m["bank_name"] for m in second.matches or []}
    finally:
        store.close()
    assert HOTLINE_BANK in banks  # the analysts' decision put its hashes in the hotline's bank
    assert "2 reports, 5 items (3 pictures), 4 duplicates folded" in text
    assert "2 inherited an assessment (40% of items)" in text


def test_the_routes_go_to_the_police_bundled_noticed_taken_down_and_verified(
    hotline_chapter: tuple[HotlineResult, str, str],
) -> None:
    result, text, url = hotline_chapter
    done = result.takedown
    assert done is not None
    # The four URLs of the assessed picture and its inheriting copies, to the home police.
    assert len(done.routes) == 4
    assert {(r["route"], r["destination_name"]) for r in done.routes} == {
        ("police", "Federal police (demo)")
    }
    assert all(r["confirmed_by"] for r in done.routes)
    assert done.bundle_ok and done.evidence_opened
    assert {"manifest.json", "vics.json", "items.csv"} <= set(done.bundle_files)
    assert sum(n.endswith(".age") for n in done.bundle_files) == 3  # one per item bundled
    assert done.referral["state"] == "acknowledged"
    assert done.referral["external_ref"] == "PJF-DEMO-0042"
    assert done.emails == 1 and done.host_link is not None and done.claim_status == 200
    assert done.notice["sendings"][0]["state"] == "sent"
    assert done.final_states == ["verified"] * 4
    assert done.removal["removal"]["count"] == 4
    assert done.removal["removed_within_days"]["1"] == 1.0
    assert "time to removal: median" in text
    assert "4 of 4 routes removed" in done.dashboard  # the same figure on the dashboard page
    store = open_store(url)
    try:
        with store.session() as s:
            actions = set(s.scalars(select(AuditEvent.action)).all())
    finally:
        store.close()
    assert {"route.confirm", "referral.build", "route.referred", "route.notified"} <= actions
    assert {"route.removed", "route.verified"} <= actions


def test_the_scheduler_crawled_the_sharing_site_and_found_the_reposts(
    org_chapter: tuple[OrgResult, str, Path], demo: tuple[DemoResult, str]
) -> None:
    result, text, workdir = org_chapter
    assert result.crawled == ["picshare"]
    assert result.sightings >= 2
    # the scheduler's own crawl finds every re-post the story's crawl found
    assert result.sighted_photos == sorted(demo[0].found) and len(result.sighted_photos) == 3
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
    org_chapter: tuple[OrgResult, str, Path],
) -> None:
    result, _text, _ = org_chapter
    assert result.album_checks == 4
    (alert,) = result.spike_alerts
    assert alert["photo"] == result.spike_photo
    assert alert["latest_increase"] >= 240_000
    assert result.spike_photo.rsplit("/", 1)[1] in result.albums_page
    assert "<svg" in result.albums_page
    assert result.spikes_found == [result.spike_photo]  # found by the scheduler's own check
    assert {"crawls", "albums", "alerts"} <= set(result.task_status)


def test_the_chapter_prints_the_url_and_the_login(org_chapter: tuple[OrgResult, str, Path]) -> None:
    result, text, _ = org_chapter
    assert f"{result.url}/org" in text
    assert ORG_USER in text and result.password in text
