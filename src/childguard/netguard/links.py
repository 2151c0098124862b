# Owns what media an HTML page shows: its image and video URLs, and its page links.
"""What a page links to: image and video URLs (every way a page can show one) and page links.

`extract_page(html, url)` is a pure function over the page text. It finds
`<img src>`, the largest `srcset` candidate (by `w`, else `x` descriptor), lazy
attributes (`data-src`, `data-original`, `data-lazy-src`, `data-srcset`),
`<a href>` to image files, `og:image` / `twitter:image`, `<picture><source srcset>`
and CSS `background-image: url(...)` in style attributes and `<style>` blocks. Videos:
`<video src>`, `<source src>` inside `<video>`, `<video poster>` (an image), `og:video`
(`:url`, `:secure_url`), `twitter:player:stream` and `<a href>` to video files; they join the
same list (`PageExtract.images`, each `how` saying where), so the crawler and the hotline
fetch and hand on every piece of media the same way (`media_urls(page_url, html)`).
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


def is_image_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(IMAGE_SUFFIXES)


def is_video_url(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(VIDEO_SUFFIXES)


def is_media_url(url: str) -> bool:
    """An image or video file by its name (what the spider fetches as media, not as a page)."""
    return is_image_url(url) or is_video_url(url)


def http_url(base: str, raw: str | None) -> str | None:
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
    base = http_url(url, sel.css("base::attr(href)").get()) or url
    title = " ".join((sel.css("title::text").get() or "").split())
    images: list[ImageRef] = []
    seen: set[str] = set()
    resolved: dict[str | None, str | None] = {}  # a page names most URLs twice (href, src)

    def resolve(raw: str | None) -> str | None:
        if raw not in resolved:
            resolved[raw] = http_url(base, raw)
        return resolved[raw]

    def add(raw: str | None, how: str) -> None:
        absolute = resolve(raw)
        if absolute and absolute not in seen:
            seen.add(absolute)
            images.append(ImageRef(absolute, how))

    for img in sel.css("img"):
        attrib = img.attrib  # a new dict on every access
        srcset = attrib.get("srcset")
        if srcset:
            add(largest_srcset_candidate(srcset), "srcset")
        for attr in LAZY_SRCSET_ATTRIBUTES:
            if attrib.get(attr):
                add(largest_srcset_candidate(attrib[attr]), "lazy")
        for attr in LAZY_ATTRIBUTES:
            add(attrib.get(attr), "lazy")
        add(attrib.get("src"), "img")
    for source in sel.css("picture source"):
        attrib = source.attrib
        for attr in ("srcset", *LAZY_SRCSET_ATTRIBUTES):
            if attrib.get(attr):
                add(largest_srcset_candidate(attrib[attr]), "picture")
    for video in sel.css("video"):
        attrib = video.attrib
        add(attrib.get("src"), "video")
        for source in video.css("source"):
            add(source.attrib.get("src"), "video-source")
        add(attrib.get("poster"), "poster")
    for meta in sel.css("meta"):
        attrib = meta.attrib
        key = (attrib.get("property") or attrib.get("name") or "").lower()
        if key in META_IMAGE_KEYS:
            add(attrib.get("content"), "og:image")
        elif key in META_VIDEO_KEYS:
            add(attrib.get("content"), "og:video")
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
        absolute = resolve(href)
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


def media_urls(page_url: str, html: str) -> list[str]:
    """Every image and video URL the page at `page_url` shows, absolute, in page order."""
    return extract_page(html, page_url).image_urls
