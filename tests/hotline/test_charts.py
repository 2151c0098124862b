"""The server-side SVG charts: well-formed XML that names itself, hostile labels escaped,
bars proportional to their values, a line broken where a week has no removal, and the data
table the pages show beside each chart."""

from __future__ import annotations

import csv
import io
from datetime import date
from xml.etree import ElementTree

import pytest

from childguard.hotline.charts import (
    bar_chart,
    line_chart,
    nice_ceiling,
    removal_by_country_chart,
    weekly_removal_chart,
)
from childguard.hotline.statistics import CountryRemoval, WeekStats

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '</text><script>alert("x")</script>&amp;\'"\x01<![CDATA[x]]>'


def parsed(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)


def test_a_bar_chart_is_accessible_xml_with_bars_proportional_to_values() -> None:
    chart = bar_chart(
        "shares",
        "Removal by hosting country",
        "Share removed per country.",
        [("BE", 80.0), ("NL", 40.0), ("US", 20.0), ("FR", 0.0)],
        x_label="removed (%)",
        y_label="hosting country",
        unit="%",
    )
    root = parsed(chart.svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None and title.text == "Removal by hosting country"
    assert desc is not None and desc.text == "Share removed per country."
    assert root.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "removed (%)" in texts and "hosting country" in texts
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert [b.get("data-label") for b in bars] == ["BE", "NL", "US", "FR"]
    widths = [float(b.get("width") or "nan") for b in bars]
    assert widths[0] > 0 and widths[3] == 0
    assert widths[1] == pytest.approx(widths[0] / 2) and widths[2] == pytest.approx(widths[0] / 4)
    assert [b.findtext(f"{SVG}title") for b in bars][1] == "NL: 40%"
    assert chart.rows == (("BE", 80.0), ("NL", 40.0), ("US", 20.0), ("FR", 0.0))
    header = next(csv.reader(io.StringIO(chart.csv())))
    assert header == ["hosting country", "removed (%)"]


def test_hostile_labels_are_escaped_and_come_back_as_text() -> None:
    chart = bar_chart(HOSTILE, HOSTILE, HOSTILE, [(HOSTILE, 3.0)], x_label=HOSTILE, y_label=HOSTILE)
    assert "<script" not in chart.svg and "\x01" not in chart.svg
    root = parsed(chart.svg)
    assert not list(root.iter(f"{SVG}script")) and not list(root.iter("script"))
    clean = HOSTILE.replace("\x01", "")
    assert root.findtext(f"{SVG}title") == clean
    bar = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar")
    assert bar.get("data-label") == clean
    line = line_chart("w", HOSTILE, HOSTILE, [(HOSTILE, 1.0), ("b", 2.0)], x_label="x", y_label="y")
    point = next(parsed(line.svg).iter(f"{SVG}circle"))
    assert point.get("data-label") == clean


def test_a_line_chart_breaks_where_a_value_is_missing_and_scales_from_zero() -> None:
    chart = line_chart(
        "weekly",
        "Time to removal by week",
        "Median hours.",
        [("W1", 10.0), ("W2", 20.0), ("W3", None), ("W4", 40.0), ("W5", 30.0)],
        x_label="ISO week",
        y_label="median hours",
    )
    root = parsed(chart.svg)
    lines = [p for p in root.iter(f"{SVG}polyline") if p.get("class") == "line"]
    assert [len((p.get("points") or "").split()) for p in lines] == [2, 2]
    points = [c for c in root.iter(f"{SVG}circle") if c.get("class") == "point"]
    assert [c.get("data-label") for c in points] == ["W1", "W2", "W4", "W5"]
    ys = [float(c.get("cy") or "nan") for c in points]
    axis = 300 - 70  # the plot's bottom: value 0
    heights = [axis - y for y in ys]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert heights[2] == pytest.approx(4 * heights[0])
    xs = [float(c.get("cx") or "nan") for c in points]
    assert xs[2] - xs[1] == pytest.approx(2 * (xs[1] - xs[0]))  # W3's place is kept


def test_empty_charts_say_no_data() -> None:
    for chart in (
        bar_chart("a", "A", "none", [], x_label="x", y_label="y"),
        line_chart("b", "B", "none", [("W1", None)], x_label="x", y_label="y"),
    ):
        assert "no data" in [t.text for t in parsed(chart.svg).iter(f"{SVG}text")]


def test_nice_ceiling() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 7, 12, 24.5, 100, 101)] == [
        1,
        0.5,
        1,
        10,
        20,
        25,
        100,
        200,
    ]


def test_the_dashboard_charts_carry_their_statistics() -> None:
    countries = removal_by_country_chart([CountryRemoval("NL", 4, 3), CountryRemoval("<b>", 2, 0)])
    root = parsed(countries.svg)
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert [(b.get("data-label"), b.get("data-value")) for b in bars] == [
        ("NL", "75.0"),
        ("<b>", "0.0"),
    ]
    assert "NL 3 of 4" in (root.findtext(f"{SVG}desc") or "")
    rows = list(csv.DictReader(io.StringIO(countries.csv())))
    assert rows[0] == {"country": "NL", "routes": "4", "removed": "3", "share_removed": "0.750"}
    weeks = weekly_removal_chart(
        [
            WeekStats("2026-W47", date(2026, 11, 16), 0, None, None),
            WeekStats("2026-W48", date(2026, 11, 23), 2, 36.0, 45.0),
        ]
    )
    assert "2026-W48 36 h (2)" in (parsed(weeks.svg).findtext(f"{SVG}desc") or "")
    assert list(csv.reader(io.StringIO(weeks.csv())))[2] == [
        "2026-W48",
        "2026-11-23",
        "2",
        "36.000",
        "45.000",
    ]
