"""What a page links to: image and video URLs (every way a page can show one) and page links.

`extract_page(html, url)` is a pure function over the page text. It finds
`<img src>`, the largest `srcset` candidate (by `w`, else `x` descriptor), lazy
attributes (`data-src`, `data-original`, `data-lazy-src`, `data-srcset`),
`<a href>` to image files, `og:image` / `twitter:image`, `<picture><source srcset>`
and CSS `background-image: url(...)` in style attributes and `<style>` blocks. Videos:
`<video src>`, `<source src>` inside `<video>`, `<video poster>` (an image), `og:video`
(`:url`, `:secure_url`), `twitter:player:stream` and `<a href>` to video files; they join the
same list (`PageExtract.images`, each `how` saying where), so the spider fetches and hands on
every piece of media the same way.
Relative URLs are resolved against `<base href>` or the page URL. Every other
http(s) `<a href>` (and `<link rel=next>`) is returned as a page link, so the
spider can follow pagination and galleries within its limits. Broken HTML is
parsed leniently by lxml; nothing here raises on bad markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag, urljoin, urlsplit

from parsel import Selector

from childguard.crawl.watch import SiteProfile

IMAGE_SUFFIXES = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")
META_VIDEO_KEYS = ("og:video", "og:video:url", "og:video:secure_url", "twitter:player:stream")
VIDEO_HOWS = frozenset({"video", "video-source", "og:video", "a-href-video"})
LAZY_ATTRIBUTES = ("data-src", "data-original", "data-lazy-src", "data-lazy", "data-url")
LAZY_SRCSET_ATTRIBUTES = ("data-srcset", "data-lazy-srcset")
META_IMAGE_KEYS = (
    "og:image",
    "og:image:url",
    "og:image:secure_url",
    "twitter:image",
    "twitter:image:src",
)
_CSS_URL = re.compile(r"background(?:-image)?\s*:[^;{}]*?url\(\s*(['\"]?)(.*?)\1\s*\)", re.I | re.S)
_NUMBER = re.compile(r"(\d[\d,.\s' ]*)\s*([kmb]?)", re.I)


@dataclass(frozen=True)
class ImageRef:
    """One image or video the page shows; `how` says where it was found (img, srcset, lazy,
    video, og:video, ...)."""

    url: str
    how: str


@dataclass
class PageExtract:
    title: str
    images: list[ImageRef] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    @property
    def image_urls(self) -> list[str]:
        """Every media URL (images and videos), in page order."""
        return list(dict.fromkeys(ref.url for ref in self.images))

    @property
    def video_urls(self) -> list[str]:
        return list(dict.fromkeys(ref.url for ref in self.images if ref.how in VIDEO_HOWS))


@dataclass(frozen=True)
class PageCounters:
    """Counters read by a site profile: page-level views/comments and per-photo views."""

    views: int | None = None
    comments: int | None = None
    per_image_views: dict[str, int] = field(default_factory=dict)


def is_image_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)


def is_video_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(VIDEO_SUFFIXES)


def is_media_url(url: str) -> bool:
    """An image or video file by its name (what the spider fetches as media, not as a page)."""
    return is_image_url(url) or is_video_url(url)


def _http_url(base: str, raw: str | None) -> str | None:
    """Resolve `raw` against `base`; None unless it is an http(s) URL. Fragments are dropped."""
    if raw is None:
        return None
    raw = raw.strip()
    if not raw or raw.startswith(
        ("data:", "javascript:", "mailto:", "tel:", "#", "about:", "blob:")
    ):
        return None
    try:
        absolute = urldefrag(urljoin(base, raw))[0]
        parts = urlsplit(absolute)
    except ValueError:  # e.g. an invalid IPv6 literal
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return absolute


def largest_srcset_candidate(srcset: str) -> str | None:
    """The candidate with the largest `w` descriptor (else the largest `x`; bare = 1x)."""
    best: tuple[int, float, str] | None = None  # (has_w, size, url)
    for raw in _split_srcset(srcset):
        bits = raw.split()
        if not bits:
            continue
        url, desc = bits[0], (bits[1].lower() if len(bits) > 1 else "1x")
        try:
            if desc.endswith("w"):
                key = (1, float(desc[:-1]), url)
            elif desc.endswith("x"):
                key = (0, float(desc[:-1]), url)
            else:
                key = (0, 1.0, url)
        except ValueError:
            key = (0, 1.0, url)
        if best is None or key[:2] > best[:2]:
            best = key
    return best[2] if best else None


def _split_srcset(srcset: str) -> list[str]:
    """Split on commas that separate candidates (a URL may itself contain commas)."""
    out: list[str] = []
    for piece in re.split(r",\s+|,(?=\s*(?:https?:)?/)", srcset.strip()):
        piece = piece.strip().rstrip(",")
        if piece:
            out.append(piece)
    return out


def extract_page(html: str, url: str) -> PageExtract:
    """Every image and page link on the page at `url` (absolute, deduplicated, in page order)."""
    sel = Selector(text=html or "<html></html>", type="html")
    base = _http_url(url, sel.css("base::attr(href)").get()) or url
    title = " ".join((sel.css("title::text").get() or "").split())
    images: list[ImageRef] = []
    seen: set[str] = set()

    def add(raw: str | None, how: str) -> None:
        absolute = _http_url(base, raw)
        if absolute and absolute not in seen:
            seen.add(absolute)
            images.append(ImageRef(absolute, how))

    for img in sel.css("img"):
        srcset = img.attrib.get("srcset")
        if srcset:
            add(largest_srcset_candidate(srcset), "srcset")
        for attr in LAZY_SRCSET_ATTRIBUTES:
            if img.attrib.get(attr):
                add(largest_srcset_candidate(img.attrib[attr]), "lazy")
        for attr in LAZY_ATTRIBUTES:
            add(img.attrib.get(attr), "lazy")
        add(img.attrib.get("src"), "img")
    for source in sel.css("picture source"):
        for attr in ("srcset", *LAZY_SRCSET_ATTRIBUTES):
            if source.attrib.get(attr):
                add(largest_srcset_candidate(source.attrib[attr]), "picture")
    for video in sel.css("video"):
        add(video.attrib.get("src"), "video")
        for source in video.css("source"):
            add(source.attrib.get("src"), "video-source")
        add(video.attrib.get("poster"), "poster")
    for meta in sel.css("meta"):
        key = (meta.attrib.get("property") or meta.attrib.get("name") or "").lower()
        if key in META_IMAGE_KEYS:
            add(meta.attrib.get("content"), "og:image")
        elif key in META_VIDEO_KEYS:
            add(meta.attrib.get("content"), "og:video")
    for style_attr in sel.css("[style]::attr(style)").getall():
        for m in _CSS_URL.finditer(style_attr):
            add(m.group(2), "css")
    for block in sel.css("style::text").getall():
        for m in _CSS_URL.finditer(block):
            add(m.group(2), "css")

    links: list[str] = []
    seen_links: set[str] = set()
    for href in [
        *sel.css("a::attr(href)").getall(),
        *sel.css("link[rel~=next]::attr(href)").getall(),
    ]:
        absolute = _http_url(base, href)
        if not absolute:
            continue
        if is_image_url(absolute):
            add(absolute, "a-href")
        elif is_video_url(absolute):
            add(absolute, "a-href-video")
        elif absolute not in seen_links:
            seen_links.add(absolute)
            links.append(absolute)
    return PageExtract(title=title, images=images, links=links)


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
            image = _http_url(url, raw)
            if image and views is not None:
                per_image[image] = views
    return PageCounters(
        views=count(sel, profile.views),
        comments=count(sel, profile.comments),
        per_image_views=per_image,
    )
