"""The items the watch spider yields and the pipelines pass along: pages and images."""

from __future__ import annotations

from dataclasses import dataclass, field

from childguard.crawl.extract import PageCounters
from childguard.matcher.results import Match
from childguard.signals.content import ContentSignals


@dataclass
class PageItem:
    """A fetched page (or one that is gone: `gone` for 404/410)."""

    url: str
    status: int
    title: str = ""
    image_urls: list[str] = field(default_factory=list)
    counters: PageCounters | None = None
    gone: bool = False


@dataclass
class ImageItem:
    """One image fetch. `body` is dropped as soon as it is hashed; it is never stored. With
    `fetch` the image is still to be fetched: a hash worker fetches and hashes it
    (`childguard.crawl.imagefetch`), capped at `maxsize` bytes (None: the crawl's cap)."""

    url: str
    page_url: str
    status: int
    body: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    gone: bool = False
    error: str | None = None
    hashes: ContentSignals | None = None
    rehashed: bool = False
    matches: list[Match] = field(default_factory=list)
    fetch: bool = False
    maxsize: int | None = None


@dataclass
class ImageBatch:
    """The images one page shows that are still to fetch (`ImageItem.fetch`): one item through
    the pipelines for all of them, each stage applied to every image, so Scrapy's per-item work
    is spent once per page, not once per image."""

    page_url: str
    images: list[ImageItem] = field(default_factory=list)
