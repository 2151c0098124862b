# Owns the hotline's charts: bar and line charts drawn as SVG on the server, with their data.
"""Server-side SVG charts of the hotline's statistics, pure functions of the data.

No script, no library and nothing from elsewhere: each chart is a small SVG document that
names itself (`<title>`, `<desc>`, `role="img"`, `aria-labelledby`), labels both axes and
carries its data twice: in the marks (each bar and point has its own `<title>` and a
`data-value`) and in the `Chart`'s table (`header`, `rows`), which the pages show beside the
picture and export as CSV. Every label is XML-escaped, and characters XML cannot carry are
dropped: host names and countries come from reported URLs, hostile input.

- `bar_chart(...)`: horizontal bars, one per label, lengths proportional to the values;
- `line_chart(...)`: a line over evenly spaced categories (weeks), broken where a value is
  missing;
- `removal_by_country_chart(rows)` and `weekly_removal_chart(weeks)`: the dashboard's two
  charts, from `childguard.hotline.statistics`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from childguard.hotline.statistics import CountryRemoval, WeekStats, to_csv

WIDTH = 640
LABEL_SPACE = 150
BAR_HEIGHT = 18
BAR_GAP = 6
LINE_HEIGHT = 300
MAX_LABEL_CHARS = 22
BAR_COLOUR = "#2f5d8a"
LINE_COLOUR = "#8a2f2f"
# Characters XML 1.0 cannot carry (control characters but tab, newline and return; lone
# surrogates; U+FFFE and U+FFFF).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: Any) -> str:
    """`value` as text safe inside an XML element."""
    return escape(_NOT_XML.sub("", str(value)))


def xml_attribute(value: Any) -> str:
    """`value` as a quoted XML attribute value."""
    return quoteattr(_NOT_XML.sub("", str(value)))


def _short(label: str) -> str:
    return label if len(label) <= MAX_LABEL_CHARS else label[: MAX_LABEL_CHARS - 1] + "…"


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value - 1e-12:
            return float(step * power)
    return float(10 * power)


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


@dataclass(frozen=True)
class Chart:
    """One chart: its name (in URLs), title and description, axis labels, the data as a
    table (the fallback and the CSV) and the SVG document."""

    name: str
    title: str
    description: str
    x_label: str
    y_label: str
    header: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    svg: str

    def csv(self) -> str:
        return to_csv(self.header, self.rows)


def _open(name: str, title: str, description: str, height: int) -> list[str]:
    ident = re.sub(r"[^a-z0-9-]", "-", name.lower())
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" class="chart" id="chart-{ident}">',
        f'<title id="{ident}-title">{xml_text(title)}</title>',
        f'<desc id="{ident}-desc">{xml_text(description)}</desc>',
        f'<text x="{WIDTH / 2:.0f}" y="18" text-anchor="middle" font-size="14" '
        f'font-weight="bold">{xml_text(title)}</text>',
    ]


def bar_chart(
    name: str,
    title: str,
    description: str,
    bars: Sequence[tuple[str, float]],
    *,
    x_label: str,
    y_label: str,
    unit: str = "",
    header: tuple[str, ...] | None = None,
    rows: Sequence[tuple[Any, ...]] | None = None,
) -> Chart:
    """Horizontal bars, one per (label, value), each as long as its value against the
    largest (negative values drawn as 0). `x_label` names the values, `y_label` the labels;
    `header` and `rows` the data table (by default the labels and values)."""
    top, bottom = 40, 46
    plot_width = WIDTH - LABEL_SPACE - 30
    count = max(len(bars), 1)
    height = top + count * (BAR_HEIGHT + BAR_GAP) + bottom
    scale_max = nice_ceiling(max((max(v, 0.0) for _, v in bars), default=0.0))
    parts = _open(name, title, description, height)
    axis_y = top + count * (BAR_HEIGHT + BAR_GAP)
    for n in range(5):
        tick = scale_max * n / 4
        x = LABEL_SPACE + plot_width * n / 4
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle" font-size="11">'
            f"{xml_text(_number(tick))}</text>"
        )
    parts.append(
        f'<line x1="{LABEL_SPACE}" y1="{axis_y}" x2="{LABEL_SPACE + plot_width}" '
        f'y2="{axis_y}" stroke="#333"/>'
        f'<text class="x-label" x="{LABEL_SPACE + plot_width / 2:.0f}" y="{height - 8}" '
        f'text-anchor="middle" font-size="12">{xml_text(x_label)}</text>'
        f'<text class="y-label" x="12" y="{top + (axis_y - top) / 2:.0f}" '
        f'transform="rotate(-90 12 {top + (axis_y - top) / 2:.0f})" text-anchor="middle" '
        f'font-size="12">{xml_text(y_label)}</text>'
    )
    if not bars:
        parts.append(
            f'<text x="{LABEL_SPACE + plot_width / 2:.0f}" y="{top + 14}" '
            f'text-anchor="middle" font-size="12" fill="#555">no data</text>'
        )
    for n, (label, value) in enumerate(bars):
        y = top + n * (BAR_HEIGHT + BAR_GAP)
        length = plot_width * max(value, 0.0) / scale_max
        shown = f"{_number(value)}{unit}"
        parts.append(
            f'<text x="{LABEL_SPACE - 6}" y="{y + BAR_HEIGHT - 4}" text-anchor="end" '
            f'font-size="12">{xml_text(_short(label))}</text>'
            f'<rect class="bar" x="{LABEL_SPACE}" y="{y}" width="{length:.3f}" '
            f'height="{BAR_HEIGHT}" fill="{BAR_COLOUR}" data-label={xml_attribute(label)} '
            f'data-value="{value!r}"><title>{xml_text(f"{label}: {shown}")}</title></rect>'
            f'<text x="{LABEL_SPACE + length + 4:.1f}" y="{y + BAR_HEIGHT - 4}" '
            f'font-size="11">{xml_text(shown)}</text>'
        )
    parts.append("</svg>")
    return Chart(
        name=name,
        title=title,
        description=description,
        x_label=x_label,
        y_label=y_label,
        header=header or (y_label, x_label),
        rows=tuple(rows if rows is not None else [(label, value) for label, value in bars]),
        svg="".join(parts),
    )


def line_chart(
    name: str,
    title: str,
    description: str,
    points: Sequence[tuple[str, float | None]],
    *,
    x_label: str,
    y_label: str,
    header: tuple[str, ...] | None = None,
    rows: Sequence[tuple[Any, ...]] | None = None,
) -> Chart:
    """A line over evenly spaced categories, one point per (label, value), broken where a
    value is None. The y axis starts at 0."""
    left, right, top, bottom = 64, 20, 36, 70
    height = LINE_HEIGHT
    plot_width = WIDTH - left - right
    plot_height = height - top - bottom
    values = [v for _, v in points if v is not None]
    scale_max = nice_ceiling(max((max(v, 0.0) for v in values), default=0.0))
    axis_y = top + plot_height
    parts = _open(name, title, description, height)
    for n in range(5):
        tick = scale_max * n / 4
        y = axis_y - plot_height * n / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_width}" y2="{y:.1f}" '
            f'stroke="#ddd"/><text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11">{xml_text(_number(tick))}</text>'
        )
    mid_y = top + plot_height / 2
    parts.append(
        f'<line x1="{left}" y1="{axis_y}" x2="{left + plot_width}" y2="{axis_y}" '
        f'stroke="#333"/><line x1="{left}" y1="{top}" x2="{left}" y2="{axis_y}" '
        f'stroke="#333"/>'
        f'<text class="x-label" x="{left + plot_width / 2:.0f}" y="{height - 8}" '
        f'text-anchor="middle" font-size="12">{xml_text(x_label)}</text>'
        f'<text class="y-label" x="14" y="{mid_y:.0f}" transform="rotate(-90 14 {mid_y:.0f})" '
        f'text-anchor="middle" font-size="12">{xml_text(y_label)}</text>'
    )
    step = plot_width / max(len(points) - 1, 1)
    every = max(1, math.ceil(len(points) / 12))
    coordinates: list[tuple[float, float] | None] = []
    for n, (label, value) in enumerate(points):
        x = left + (step * n if len(points) > 1 else plot_width / 2)
        if n % every == 0:
            parts.append(
                f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="end" font-size="10" '
                f'transform="rotate(-40 {x:.1f} {axis_y + 14})">{xml_text(_short(label))}</text>'
            )
        if value is None:
            coordinates.append(None)
            continue
        coordinates.append((x, axis_y - plot_height * max(value, 0.0) / scale_max))
    segment: list[str] = []
    segments: list[list[str]] = []
    for point in coordinates:
        if point is None:
            if segment:
                segments.append(segment)
            segment = []
        else:
            segment.append(f"{point[0]:.1f},{point[1]:.1f}")
    if segment:
        segments.append(segment)
    for run in segments:
        parts.append(
            f'<polyline class="line" fill="none" stroke="{LINE_COLOUR}" stroke-width="2" '
            f'points="{" ".join(run)}"/>'
        )
    for (label, value), point in zip(points, coordinates, strict=True):
        if point is None or value is None:
            continue
        parts.append(
            f'<circle class="point" cx="{point[0]:.1f}" cy="{point[1]:.1f}" r="3.5" '
            f'fill="{LINE_COLOUR}" data-label={xml_attribute(label)} data-value="{value!r}">'
            f"<title>{xml_text(f'{label}: {_number(value)}')}</title></circle>"
        )
    if not values:
        parts.append(
            f'<text x="{left + plot_width / 2:.0f}" y="{top + plot_height / 2:.0f}" '
            f'text-anchor="middle" font-size="12" fill="#555">no data</text>'
        )
    parts.append("</svg>")
    return Chart(
        name=name,
        title=title,
        description=description,
        x_label=x_label,
        y_label=y_label,
        header=header or (x_label, y_label),
        rows=tuple(rows if rows is not None else list(points)),
        svg="".join(parts),
    )


def removal_by_country_chart(rows: Sequence[CountryRemoval]) -> Chart:
    """The share of routes removed per hosting country, in percent, as bars."""
    listed = ", ".join(f"{r.country} {r.removed} of {r.routes}" for r in rows) or "no routes"
    return bar_chart(
        "removal-by-country",
        "Removal by hosting country",
        f"Share of confirmed routes whose content was removed, per hosting country: {listed}.",
        [(r.country, round(100 * r.share, 1)) for r in rows],
        x_label="removed (% of routes)",
        y_label="hosting country",
        unit="%",
        header=CountryRemoval.CSV_HEADER,
        rows=[row for r in rows for row in r.csv_rows()],
    )


def weekly_removal_chart(weeks: Sequence[WeekStats]) -> Chart:
    """The median hours from report to removal of the routes removed each week, as a line."""
    listed = (
        ", ".join(
            f"{w.week} {_number(w.median_hours)} h ({w.removed})"
            for w in weeks
            if w.median_hours is not None
        )
        or "no removals"
    )
    span = f"{weeks[0].week} to {weeks[-1].week}" if weeks else "no weeks"
    return line_chart(
        "removal-weekly",
        "Time to removal by week",
        f"Median hours from report to removal of the routes removed each ISO week, {span}: "
        f"{listed}.",
        [(w.week, w.median_hours) for w in weeks],
        x_label="ISO week of removal",
        y_label="median hours to removal",
        header=WeekStats.CSV_HEADER,
        rows=[row for w in weeks for row in w.csv_rows()],
    )


__all__ = [
    "Chart",
    "bar_chart",
    "line_chart",
    "nice_ceiling",
    "removal_by_country_chart",
    "weekly_removal_chart",
    "xml_attribute",
    "xml_text",
]
