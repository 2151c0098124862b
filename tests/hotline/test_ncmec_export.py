"""The NCMEC-shaped export of assessed items: its elements, order and values checked against
the structure written down in `childguard.hotline.ncmec` (no XSD was available), on SQLite and
PostgreSQL; departures from that structure are found."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from childguard.hotline import ncmec
from childguard.hotline.assessments import record_vote
from childguard.hotline.bundles import UnknownItem, gather
from childguard.store.db import Store
from hotline.hotline_site import jpeg_bytes, serving
from hotline.referral_fixtures import (
    BASELINE,
    INFANT_C,
    PUBESCENT_B,
    analysts,
    cheap_password_hashes,
    report_and_assess,
    sqlite_store,
)
from hotline.review_items import make_item

__all__ = ["cheap_password_hashes", "sqlite_store"]
REPORTER = ncmec.Reporter("Test Hotline", "hotline@test")


def test_assessed_items_export_as_a_cybertipline_report(store: Store, tmp_path: Path) -> None:
    with serving() as site:
        reported = report_and_assess(
            store, site, tmp_path / "evidence", [61, 62, 63], [BASELINE, INFANT_C, PUBESCENT_B]
        )
    data = ncmec.export_items(
        store, reported.item_ids, actor="user:7", reporter=REPORTER, reference="CG-R-2026-000001"
    )
    assert ncmec.check_export(data) == []
    root = etree.fromstring(data)
    report = root.find("report")
    assert report is not None
    assert [c.tag for c in report] == ["incidentSummary", "internetDetails", "reporter"]
    assert report.findtext("incidentSummary/incidentType") == ncmec.INCIDENT_TYPE
    page = report.find("internetDetails/webPageIncident")
    assert page is not None and page.get("thirdPartyHostedContent") == "true"
    assert [u.text for u in page.findall("url")] == reported.urls
    assert "CG-R-2026-000001" in (page.findtext("additionalInfo") or "")
    assert report.findtext("reporter/reportingPerson/firstName") == "Test Hotline"
    files = root.findall("fileDetails")
    assert [f.findtext("industryClassification") for f in files] == ["A1", "A2", "B1"]
    assert [f.findtext("fileId") for f in files] == [
        f"childguard-item-{i}" for i in reported.item_ids
    ]
    first = files[0]
    hashes = {h.get("hashType"): h.text for h in first.findall("originalFileHash")}
    photo = jpeg_bytes(61)
    assert hashes == {
        "MD5": hashlib.md5(photo).hexdigest(),
        "SHA1": hashlib.sha1(photo).hexdigest(),
        "SHA256": hashlib.sha256(photo).hexdigest(),
    }
    assert first.find("fileAnnotations") is None  # nothing flagged
    annotations = files[1].find("fileAnnotations")
    assert annotations is not None
    assert [a.tag for a in annotations] == ["viral", "infant"]  # in the schema's order
    assert all(len(a) == 0 and not (a.text or "").strip() for a in annotations)
    assert first.findtext("locationOfFile") == reported.urls[0]
    assert first.findtext("originalFileName") == "photo-61.jpg"


def test_undecided_or_legal_items_are_not_exported(sqlite_store: Store) -> None:
    store = sqlite_store
    waiting = make_item(store, 64)
    with pytest.raises(ncmec.NotExportable, match="not decided"):
        ncmec.export_items(store, [waiting], actor="user:7", reporter=REPORTER)
    a, b = analysts(store, 2)
    legal = make_item(store, 65)
    for voter in (a, b):
        record_vote(store, legal, voter, {"age_band": "adult", "severity": "none"})
    with pytest.raises(ncmec.NotExportable, match="not-illegal"):
        ncmec.export_items(store, [legal], actor="user:7", reporter=REPORTER)
    with pytest.raises(UnknownItem, match="999999"):
        ncmec.export_items(store, [999_999], actor="user:7", reporter=REPORTER)


def test_the_structure_check_finds_what_is_out_of_place(sqlite_store: Store) -> None:
    store = sqlite_store
    item_id = make_item(store, 66)
    (item,) = gather(store, [item_id])
    good = ncmec.export([item], REPORTER)
    assert ncmec.check_export(good) == []

    def edited(change: Callable[[Any], object]) -> list[str]:
        root = etree.fromstring(good)
        change(root)
        return ncmec.check_export(etree.tostring(root))

    def move_summary_last(root: Any) -> None:
        report = root.find("report")
        summary = report.find("incidentSummary")
        report.remove(summary)
        report.append(summary)

    def set_text(path: str, text: str) -> Callable[[Any], None]:
        def change(root: Any) -> None:
            root.find(path).text = text

        return change

    def problems_of(change: Callable[[Any], object], wanted: str) -> bool:
        return any(wanted in p for p in edited(change))

    report_of = lambda root: root.find("report")  # noqa: E731
    assert problems_of(lambda r: report_of(r).remove(r.find("report/reporter")), "is required")
    assert problems_of(move_summary_last, "out of order")
    assert problems_of(set_text("report/incidentSummary/incidentType", "Other"), "not one of")
    assert problems_of(set_text("report/incidentSummary/incidentDateTime", "today"), "not a date")
    assert problems_of(lambda r: etree.SubElement(r.find("fileDetails"), "name"), "not allowed")
    assert problems_of(
        lambda r: r.find("fileDetails/originalFileHash").attrib.pop("hashType"), "hashType"
    )
    assert problems_of(lambda r: etree.SubElement(report_of(r), "reporter"), "at most 1")
    assert ncmec.check_export(b"<report>") and ncmec.check_export(b"<other/>")
    with pytest.raises(ValueError):
        ncmec.export([], REPORTER)
