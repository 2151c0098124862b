"""The demo's HTML report: the sightings of an organisation's photos with their URLs and the
match as evidence, and the view-spike alerts with their series. Text and links only: the
report never embeds or links an image for display (no `<img>`), so opening it shows no photo."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from childguard.crawl.sightings import SightingView
from childguard.store.base import utcnow


@dataclass(frozen=True)
class SightingRow:
    """A sighting plus the registered photo it matched (file name), for tables and reports."""

    sighting: SightingView
    photo: str


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>childguard report: {{ organisation }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.removed { color: #888; } .online { color: #b00; font-weight: 600; }
code { font-size: 0.85rem; word-break: break-all; }
</style></head><body>
<h1>Re-posts of {{ organisation }}'s photos</h1>
<p>Generated {{ generated }} by childguard. This report holds URLs, times and hashes only:
no image is stored or shown. Use it to ask the site to take the copies down, or to report
them to a hotline.</p>
<p>{{ rows|length }} sighting(s): {{ online }} online, {{ removed }} removed.</p>
<table>
<tr><th>#</th><th>status</th><th>matched photo</th><th>page</th><th>image URL</th>
<th>match</th><th>first seen</th><th>last seen</th><th>times seen</th><th>removed at</th></tr>
{% for r in rows %}{% set s = r.sighting %}
<tr class="{{ s.status }}"><td>{{ s.id }}</td><td class="{{ s.status }}">{{ s.status }}</td>
<td>{{ r.photo }}</td>
<td><a href="{{ s.page_url }}" rel="nofollow noreferrer">{{ s.page_title or s.page_url }}</a><br>
<code>{{ s.page_url }}</code></td>
<td><code>{{ s.image_url }}</code></td>
<td>{{ s.signal_type }} distance {{ s.distance }}<br>bank {{ s.bank }}, entry {{ s.entry_id }}</td>
<td>{{ s.first_seen.isoformat(timespec="seconds") }}</td>
<td>{{ s.last_seen.isoformat(timespec="seconds") }}</td><td>{{ s.times_seen }}</td>
<td>{{ s.removed_at.isoformat(timespec="seconds") if s.removed_at else "" }}</td></tr>
{% endfor %}
</table>
{% if spikes %}<h2>View spikes on the organisation's own albums</h2>
{% for a in spikes %}
<h3>{{ a.photo }}</h3>
<p>Album <code>{{ a.album }}</code>: +{{ a.latest_increase }} views at {{ a.rate_per_hour }} an
hour, {{ a.ratio }}x the album's norm ({{ a.album_norm_per_hour }} an hour), robust z
{{ a.robust_z }}.</p>
<table><tr><th>observed at</th><th>views</th></tr>
{% for at, views in a.series %}<tr><td>{{ at }}</td><td>{{ "{:,}".format(views) }}</td></tr>
{% endfor %}</table>
{% endfor %}{% endif %}
</body></html>
"""


def render_report(
    organisation: str,
    rows: Sequence[SightingRow],
    spikes: Sequence[dict[str, Any]] = (),
    *,
    generated: datetime | None = None,
) -> str:
    """The report as an HTML string (autoescaped: page titles come from crawled sites)."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    return env.from_string(_TEMPLATE).render(
        organisation=organisation,
        rows=list(rows),
        online=sum(1 for r in rows if r.sighting.status == "online"),
        removed=sum(1 for r in rows if r.sighting.status == "removed"),
        spikes=list(spikes),
        generated=(generated or utcnow()).isoformat(timespec="seconds"),
    )


def write_report(
    path: Path,
    organisation: str,
    rows: Sequence[SightingRow],
    spikes: Sequence[dict[str, Any]] = (),
) -> Path:
    """Write the report to `path` (atomically) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(render_report(organisation, rows, spikes), encoding="utf-8")
    tmp.replace(path)
    return path
