"""Reports fetched from pages served on 127.0.0.1 become items: deduplicated exact and near,
matched to a known-abuse bank, inheriting a decided assessment, retried after failures."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.hotline import processing
from childguard.hotline.items import inherited_share
from childguard.hotline.reports import create_report, report_urls
from childguard.pipeline import hash_bytes
from childguard.store.db import Store
from childguard.store.hotline_models import Assessment, AssessmentLabel, Item, ItemPlace
from hotline.hotline_site import Route, jpeg_bytes, near_duplicate, serving, settings_for


def _report(store: Store, *urls: str) -> int:
    return create_report(store, list(urls), channel="api", enqueue=False).id


def test_the_same_and_a_near_duplicate_image_in_two_reports_bring_no_new_review_work(
    store: Store, tmp_path: Path
) -> None:
    photo, other = jpeg_bytes(11), jpeg_bytes(12)
    settings = settings_for(tmp_path / "evidence")
    with serving() as site:
        site.image("/a.jpg", photo)
        site.image("/b.jpg", other)
        site.image("/a-small.jpg", near_duplicate(photo))
        site.page("/gallery.html", "/a.jpg", "b.jpg")
        site.page("/mirror.html", "/a.jpg", "/a-small.jpg")
        first = _report(store, site.url("/gallery.html"))
        processing.process_report(store, first, settings)
        second = _report(store, site.url("/mirror.html"), site.url("/b.jpg"))
        result = processing.process_report(store, second, settings)

    with store.session() as s:
        items = s.scalars(select(Item).order_by(Item.id)).all()
        assert len(items) == 3  # a, b, and the near duplicate of a
        a, b, small = items
        assert small.duplicate_of == a.id and a.duplicate_of is None and b.duplicate_of is None
        assert (a.times_seen, b.times_seen, small.times_seen) == (2, 2, 1)
        places = s.scalars(select(ItemPlace).where(ItemPlace.item_id == a.id)).all()
        assert {p.report_id for p in places} == {first, second}
        assert {p.page_url for p in places} == {site.url("/gallery.html"), site.url("/mirror.html")}
        waiting = [i.id for i in items if i.state == "new" and i.duplicate_of is None]
        assert waiting == [a.id, b.id]  # the second report added no item to review
    states = [u.state for u in report_urls(store, second)]
    assert states == ["in-review", "in-review"]  # what it brought still waits for the first review
    assert [len(u["items"]) for u in result["urls"]] == [2, 1]


def test_a_known_abuse_match_comes_first_with_its_provenance(store: Store, tmp_path: Path) -> None:
    photo = jpeg_bytes(21)
    create_bank(store, "hotline-known", "known-abuse", actor="test")
    pdq = hash_bytes(photo).value("pdq")
    assert pdq is not None
    import_records(
        store,
        "hotline-known",
        [EntryRecord("pdq", pdq, source="partner-list", classification_label="A1")],
        actor="test",
        organisation="Partner Hotline",
    )
    with serving() as site:
        site.image("/x.jpg", near_duplicate(photo))
        site.image("/y.jpg", jpeg_bytes(22))
        report = _report(store, site.url("/x.jpg"), site.url("/y.jpg"))
        processing.process_report(store, report, settings_for(tmp_path / "evidence"))
    with store.session() as s:
        matched, plain = s.scalars(select(Item).order_by(Item.id)).all()
    assert (matched.priority, plain.priority) == (0, 100)
    assert matched.matches is not None and plain.matches is None
    (match,) = matched.matches
    assert match["bank_name"] == "hotline-known" and match["bank_kind"] == "known-abuse"
    assert match["source"] == "partner-list" and match["classification_label"] == "A1"


def test_an_assessed_item_is_inherited_by_its_near_duplicate_and_never_reviewed_again(
    store: Store, tmp_path: Path
) -> None:
    photo = jpeg_bytes(31)
    settings = settings_for(tmp_path / "evidence")
    with serving() as site:
        site.image("/p.jpg", photo)
        site.image("/p2.jpg", near_duplicate(photo))
        processing.process_report(store, _report(store, site.url("/p.jpg")), settings)
        with store.session() as s:
            item = s.scalars(select(Item)).one()
            final = Assessment(
                item_id=item.id,
                kind="final",
                analyst="analyst-1",
                facts={"age_band": "adult"},
                outcome="not-illegal",
            )
            s.add(final)
            s.flush()
            s.add(
                AssessmentLabel(
                    assessment_id=final.id,
                    scheme="inhope",
                    profile="default",
                    version="1",
                    label="not-illegal",
                )
            )
            item.state, item.outcome = "assessed", "not-illegal"
            final_id = final.id
        again = _report(store, site.url("/p.jpg"), site.url("/p2.jpg"))
        processing.process_report(store, again, settings)
    assert [u.state for u in report_urls(store, again)] == ["assessed", "assessed"]
    with store.session() as s:
        copy = s.scalars(select(Item).where(Item.duplicate_of.is_not(None))).one()
        assert copy.state == "inherited" and copy.outcome == "not-illegal"
        inherited = s.scalars(select(Assessment).where(Assessment.item_id == copy.id)).one()
        assert inherited.kind == "inherited" and inherited.inherited_from == final_id
        assert inherited.facts == {"age_band": "adult"} and inherited.analyst == "analyst-1"
        labels = s.scalars(
            select(AssessmentLabel).where(AssessmentLabel.assessment_id == inherited.id)
        ).all()
        assert [(label.scheme, label.label) for label in labels] == [("inhope", "not-illegal")]
    assert inherited_share(store) == pytest.approx(0.5)


def test_fetch_failures_are_kept_with_the_reason_retried_with_backoff_and_given_up(
    store: Store, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path / "evidence", give_up_after=2)
    with serving() as site:
        site.routes["/gone.jpg"] = Route(b"no", "text/plain", 500)
        report = _report(store, site.url("/gone.jpg"))
        processing.process_report(store, report, settings)
        (url,) = report_urls(store, report)
        assert url.state == "fetch-failed" and "answered 500" in (url.last_error or "")
        assert url.attempts == 1
        assert url.next_attempt_at - url.next_attempt_at.now(url.next_attempt_at.tzinfo) > (
            timedelta(minutes=4)
        )
        processing.process_report(store, report, settings)  # not due yet: untouched
        assert report_urls(store, report)[0].attempts == 1
        later = url.next_attempt_at + timedelta(seconds=1)
        processing.process_report(store, report, settings, now=later)
        (url,) = report_urls(store, report)
        assert url.attempts == 2 and (url.last_error or "").startswith("gave up after 2")
        assert url.next_attempt_at.year == 9999
        site.routes["/later.jpg"] = Route(b"busy", "text/plain", 503)
        retried = _report(store, site.url("/later.jpg"))
        processing.process_report(store, retried, settings)
        site.image("/later.jpg", jpeg_bytes(41))
        processing.process_due(store, settings, now=later + timedelta(minutes=10))
    (url,) = report_urls(store, retried)
    assert url.state == "in-review" and url.attempts == 2 and url.last_error is None
    with store.session() as s:
        assert len(s.scalars(select(Item)).all()) == 1


def test_without_the_private_setting_a_local_address_is_refused_and_kept_as_the_reason(
    store: Store, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path / "evidence")
    settings.allow_private = False
    with serving() as site:
        site.image("/local.jpg", jpeg_bytes(81))
        report = _report(store, site.url("/local.jpg"))
        processing.process_report(store, report, settings)
        assert site.hits == []
    (url,) = report_urls(store, report)
    assert url.state == "fetch-failed" and "loopback" in (url.last_error or "")
