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
from typing import Any
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


# A path-absolute reference (`/img/1.jpg?s=2`) that `urljoin` would only append to the base's
# scheme and host: plain characters, no dot segments, no empty query, no fragment.
_PLAIN_ABSOLUTE_PATH = re.compile(
    r"/(?!/)[A-Za-z0-9_\-.~%!$&'()*+,=:@/]*(?:\?[A-Za-z0-9_\-.~%!$&'()*+,=:@/?]+)?"
)
_DOT_SEGMENT = re.compile(r"/\.\.?(?:/|\?|$)")


class _Resolver:
    """`http_url` against one base, memoised, with a short road for the path-absolute
    references that make up most of a gallery page (the same URL `urljoin` gives)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.origin: str | None = None
        try:
            parts = urlsplit(base)
            if parts.scheme in ("http", "https") and parts.hostname:
                self.origin = f"{parts.scheme}://{parts.netloc}"
        except ValueError:
            pass
        self.resolved: dict[str | None, str | None] = {}

    def __call__(self, raw: str | None) -> str | None:
        found = self.resolved.get(raw, _MISSING)
        if found is not _MISSING:
            return found  # type: ignore[return-value]
        if (
            raw is not None
            and self.origin is not None
            and _PLAIN_ABSOLUTE_PATH.fullmatch(raw)
            and not _DOT_SEGMENT.search(raw)
        ):
            result: str | None = self.origin + raw
        else:
            result = http_url(self.base, raw)
        self.resolved[raw] = result
        return result


_MISSING = object()


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


def _rel_next(rel: str | None) -> bool:
    """`link[rel~=next]`: "next" among the rel attribute's space-separated words."""
    return bool(rel) and "next" in _XML_SPACE.split(rel or "")


_XML_SPACE = re.compile(r"[ \t\r\n]+")


def extract_page(html: str, url: str) -> PageExtract:
    """Every image and page link on the page at `url` (absolute, deduplicated, in page order).

    One walk over the parsed tree (parsel's lenient lxml parse) gathers every kind of element,
    then each kind is read in the order below: `img`, `picture source`, `video` (its sources
    and poster), `meta`, `style` attributes, `style` blocks, then `a href` and
    `link rel=next`."""
    root = Selector(text=html or "<html></html>", type="html").root
    imgs: list[Any] = []
    picture_sources: list[Any] = []
    videos: list[Any] = []
    metas: list[Any] = []
    styles: list[str] = []
    blocks: list[str] = []
    hrefs: list[str] = []
    next_links: list[str] = []
    base_href: str | None = None
    title: str | None = None
    for el in root.iter():
        tag = el.tag
        if not isinstance(tag, str):  # comments, processing instructions
            continue
        attrib = el.attrib
        if attrib:
            style = attrib.get("style")
            if style is not None:
                styles.append(style)
        if tag == "img":
            imgs.append(attrib)
        elif tag == "a":
            href = attrib.get("href")
            if href is not None:
                hrefs.append(href)
        elif tag == "source":
            if any(True for _ in el.iterancestors("picture")):
                picture_sources.append(attrib)
        elif tag == "video":
            videos.append(el)
        elif tag == "meta":
            metas.append(attrib)
        elif tag == "style":
            blocks += [t for t in (el.text, *(child.tail for child in el)) if t is not None]
        elif tag == "link":
            href = attrib.get("href")
            if href is not None and _rel_next(attrib.get("rel")):
                next_links.append(href)
        elif tag == "title":
            if title is None:
                title = next(
                    (t for t in (el.text, *(child.tail for child in el)) if t is not None), None
                )
        elif tag == "base" and base_href is None:
            base_href = attrib.get("href")
    base = http_url(url, base_href) or url
    images: list[ImageRef] = []
    seen: set[str] = set()
    resolve = _Resolver(base)  # a page names most URLs twice (href, src)

    def add(raw: str | None, how: str) -> None:
        absolute = resolve(raw)
        if absolute and absolute not in seen:
            seen.add(absolute)
            images.append(ImageRef(absolute, how))

    for attrib in imgs:
        srcset = attrib.get("srcset")
        if srcset:
            add(largest_srcset_candidate(srcset), "srcset")
        for attr in LAZY_SRCSET_ATTRIBUTES:
            if attrib.get(attr):
                add(largest_srcset_candidate(attrib[attr]), "lazy")
        for attr in LAZY_ATTRIBUTES:
            add(attrib.get(attr), "lazy")
        add(attrib.get("src"), "img")
    for attrib in picture_sources:
        for attr in ("srcset", *LAZY_SRCSET_ATTRIBUTES):
            if attrib.get(attr):
                add(largest_srcset_candidate(attrib[attr]), "picture")
    for video in videos:
        add(video.get("src"), "video")
        for source in video.iterdescendants("source"):
            add(source.get("src"), "video-source")
        add(video.get("poster"), "poster")
    for attrib in metas:
        key = (attrib.get("property") or attrib.get("name") or "").lower()
        if key in META_IMAGE_KEYS:
            add(attrib.get("content"), "og:image")
        elif key in META_VIDEO_KEYS:
            add(attrib.get("content"), "og:video")
    for text in (*styles, *blocks):
        for m in _CSS_URL.finditer(text):
            add(m.group(2), "css")

    links: list[str] = []
    seen_links: set[str] = set()
    for href in (*hrefs, *next_links):
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
    return PageExtract(title=" ".join((title or "").split()), images=images, links=links)


def media_urls(page_url: str, html: str) -> list[str]:
    """Every image and video URL the page at `page_url` shows, absolute, in page order."""
    return extract_page(html, page_url).image_urls
