"""The `suspected` hint of a report, on SQLite and PostgreSQL: validated with the other hints,
kept with the report, and shown on each review item it brought (the item's places and its
`suspected` list), next to an ordinary report's hints."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from childguard.accounts import create_user
from childguard.hotline import processing, review
from childguard.hotline.reports import ReportRejected, create_report
from childguard.store.db import Store
from childguard.store.hotline_models import Item, Report
from hotline.hotline_site import jpeg_bytes, serving, settings_for


def test_a_suspected_hint_outside_its_list_is_refused(store: Store) -> None:
    for value in ("abuse", "HARVESTED!", "x" * 101, 3):
        with pytest.raises(ReportRejected) as refused:
            create_report(
                store,
                ["https://a.example/p"],
                channel="api",
                hints={"suspected": value},
                enqueue=False,
            )
        assert refused.value.code == "hint-invalid", value
    with store.session() as s:
        assert s.scalars(select(Report)).all() == []


def test_the_suspected_hint_reaches_the_analysts_item(store: Store, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "evidence")
    with serving() as site:
        site.image("/copy.jpg", jpeg_bytes(31))
        site.image("/other.jpg", jpeg_bytes(32))
        harvested = create_report(
            store,
            [site.url("/copy.jpg")],
            channel="api",
            hints={"content_type": "images", "suspected": " harvested "},
            enqueue=False,
        ).id
        plain = create_report(
            store,
            [site.url("/copy.jpg"), site.url("/other.jpg")],
            channel="web",
            hints={"site_type": "forum"},
            enqueue=False,
        ).id
        processing.process_report(store, harvested, settings)
        processing.process_report(store, plain, settings)
    with store.session() as s:
        report = s.get(Report, harvested)
        assert report is not None
        assert report.hints == {"content_type": "images", "suspected": "harvested"}
        copy_id, other_id = s.scalars(select(Item.id).order_by(Item.id)).all()

    analyst = create_user(store, "analyst-h", "a long password 123", actor="t", roles=("analyst",))
    assert review.next_item(store, analyst.id) == copy_id
    item = review.item_view(store, copy_id)
    assert item["suspected"] == ["harvested"]
    by_report = {p["report_id"]: p["hints"] for p in item["places"]}
    assert by_report == {
        harvested: {"content_type": "images", "suspected": "harvested"},
        plain: {"site_type": "forum"},
    }
    other = review.item_view(store, other_id)
    assert other["suspected"] == []
    assert [p["hints"] for p in other["places"]] == [{"site_type": "forum"}]
