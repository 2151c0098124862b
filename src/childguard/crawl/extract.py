"""What a site profile reads from a page: view and comment counters, page-level and per photo.

The media URLs and page links of a page are extracted by `childguard.netguard.links`
(`extract_page`), shared with the hotline; this module keeps what only the crawler reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from parsel import Selector

from childguard.crawl.watch import SiteProfile
from childguard.netguard.links import http_url

_NUMBER = re.compile(r"(\d[\d,.\s' ]*)\s*([kmb]?)", re.I)


@dataclass(frozen=True)
class PageCounters:
    """Counters read by a site profile: page-level views/comments and per-photo views."""

    views: int | None = None
    comments: int | None = None
    per_image_views: dict[str, int] = field(default_factory=dict)


def parse_count(text: str | None) -> int | None:
    """'1,234' -> 1234, '16M views' -> 16000000, '2.5k' -> 2500; None when there is no number."""
    if not text:
        return None
    m = _NUMBER.search(text)
    if not m:
        return None
    digits, suffix = m.group(1).strip(), m.group(2).lower()
    multiplier = {"": 1, "k": 1_000, "m": 1_000_000, "b": 1_000_000_000}[suffix]
    cleaned = re.sub(r"[,\s' ]", "", digits)
    if suffix and cleaned.count(".") == 1:
        try:
            return int(float(cleaned) * multiplier)
        except ValueError:
            return None
    cleaned = cleaned.replace(".", "")  # "1.234" as a thousands separator
    return int(cleaned) * multiplier if cleaned.isdigit() else None


def read_counters(html: str, url: str, profile: SiteProfile) -> PageCounters:
    """Apply a site profile's selectors to a page. Missing or unreadable counters are None."""
    sel = Selector(text=html or "<html></html>", type="html")

    def count(scope: Selector, css: str | None) -> int | None:
        if not css:
            return None
        try:
            texts = scope.css(css if "::" in css else css + " ::text").getall()
        except Exception:  # an invalid selector in a profile must not crash the crawl
            return None
        return parse_count(" ".join(t.strip() for t in texts if t.strip()))

    per_image: dict[str, int] = {}
    if profile.item and profile.item_views:
        try:
            blocks: list[Selector] = list(sel.css(profile.item))
        except Exception:
            blocks = []
        for block in blocks:
            views = count(block, profile.item_views)
            node = block.css(profile.item_image)
            raw = None
            if node:
                n = node[0]
                raw = (
                    n.attrib.get("src")
                    or n.attrib.get("data-src")
                    or n.attrib.get("href")
                    or n.attrib.get("data-original")
                )
            image = http_url(url, raw)
            if image and views is not None:
                per_image[image] = views
    return PageCounters(
        views=count(sel, profile.views),
        comments=count(sel, profile.comments),
        per_image_views=per_image,
    )
