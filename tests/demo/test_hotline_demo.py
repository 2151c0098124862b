"""The demo's hotline chapter against the real service: a site on 127.0.0.1 with benign
photos, a report through the French form, real fetches by the service's job runner, two
analysts over `/v1/hotline`, and a second report that inherits the assessment."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.console import Console
from sqlalchemy import select

from childguard.demo import ASSETS
from childguard.demo.hotline_story import DEMO_BANK, HotlineResult, run_hotline
from childguard.demo.story import isolated_environment
from childguard.hotline.assessments import HOTLINE_BANK
from childguard.store import open_store
from childguard.store.hotline_models import Assessment, Item, Report
from childguard.store.models import AuditEvent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HotlineResult, str, str]]:
    workdir = tmp_path_factory.mktemp("hotline-demo")
    url = f"sqlite:///{workdir / 'childguard.db'}"
    console = Console(record=True, width=200)
    with isolated_environment(workdir):
        store = open_store(url)
        try:
            result = run_hotline(store, url, workdir, sorted(ASSETS.glob("*.jpg")), console)
        finally:
            store.close()
    yield result, console.export_text(), url


def test_the_report_came_through_the_french_form_and_its_items_are_deduplicated(
    chapter: tuple[HotlineResult, str, str],
) -> None:
    result, text, url = chapter
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
    chapter: tuple[HotlineResult, str, str],
) -> None:
    result, _, url = chapter
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
            assert banks == {DEMO_BANK}
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
    chapter: tuple[HotlineResult, str, str],
) -> None:
    result, text, url = chapter
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
    chapter: tuple[HotlineResult, str, str],
) -> None:
    result, text, url = chapter
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
