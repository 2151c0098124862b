"""The watch spider: walks a watch's pages within its limits and fetches every image and
video they show.

Pages stay within the watch's allowed domains, depth and page limits. The page
limit is spent in priority order (`childguard.crawl.priority`): images first, then
pages that show images, pagination and other pages; calendars and traps are held
back until nothing else is left. The limit is spent when a page is downloaded
(`spend_page`, called by `PageBudgetMiddleware`), not when its link is seen. Endless
link spaces (calendars, session-id loops) are also cut by two guards: at most
`max_pages_per_pattern` pages per URL shape (digits and query values blanked;
shapes whose pages showed images are exempt: a site's photo pages share one shape)
and no path that repeats one segment more than `max_segment_repeats` times.
Images may live on any host (CDNs) but still pass the SSRF guard. Each image URL
is fetched once per run however many pages show it. Images are not Scrapy requests:
the spider yields each as an `ImageItem` to fetch, and a hash worker downloads and
hashes it (`childguard.crawl.imagefetch`); through a proxy they are requests as pages
are. The spider only yields items and page requests; fetching and hashing images,
matching and sightings are pipeline stages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import scrapy
from scrapy import signals
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from childguard.crawl.context import CrawlContext
from childguard.crawl.extract import read_counters
from childguard.crawl.items import ImageBatch, ImageItem, PageItem
from childguard.crawl.priority import HELD_BACK, IMAGE_PRIORITY, LinkKind, LinkRanker
from childguard.log import get_logger
from childguard.media import sniff_content_type
from childguard.netguard.links import extract_page, is_media_url, is_video_url

log = get_logger("childguard.crawl.spider")
# The download cap of a URL that names a video file; other media keep the crawl's own cap
# (DOWNLOAD_MAXSIZE). Within the media limits of `childguard.media.Limits.max_bytes`.
VIDEO_MAXSIZE = 256 * 1024 * 1024

PAGE_STATUSES = [404, 410]
IMAGE_STATUSES = [304, 404, 410]
_DIGITS = re.compile(r"\d+")
# Links remembered (fetched, queued or held back) per page of the limit: bounds the memory a
# site full of links can take.
SEEN_FACTOR = 10
# Pages in flight when a crawl whose hash workers fetch the images starts; the limit doubles
# with every page answered, up to CONCURRENT_REQUESTS. The first pages' images then reach the
# workers without waiting behind a burst of connection set-ups (a seed page with 64 links put
# 0.3 s between the seed and the first gallery page).
START_PAGES = 4


def url_shape(url: str) -> str:
    """The URL with digit runs and query values blanked: /cal/2024/05?d=3 -> /cal/#/#?d="""
    parts = urlsplit(url)
    query = urlencode(sorted((k, "") for k, _ in parse_qsl(parts.query, keep_blank_values=True)))
    return f"{parts.hostname}{_DIGITS.sub('#', parts.path)}?{query}"


def max_segment_repeats(url: str) -> int:
    segments = [s for s in urlsplit(url).path.split("/") if s]
    return max(Counter(segments).values(), default=0)


class WatchSpider(scrapy.Spider):
    name = "childguard-watch"

    def __init__(self, context: CrawlContext, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context = context
        self.watch = context.watch
        self.allowed_domains = list(self.watch.domains)
        self.page_maxsize = context.page_maxsize
        self._pages: set[str] = set()
        self._images: set[str] = set()
        self._shapes: Counter[str] = Counter()
        self._refused_shapes: set[str] = set()
        self.ranker = LinkRanker()
        self._held: dict[LinkKind, list[scrapy.Request]] = {kind: [] for kind in HELD_BACK}
        self._spent = 0
        self._full_concurrency = 0

    # -- requests -----------------------------------------------------------------------
    def _meta(self, **extra: Any) -> dict[str, Any]:
        meta = dict(extra)
        if self.watch.proxy:
            meta["proxy"] = self.watch.proxy
        return meta

    def _stat(self, key: str, n: int = 1) -> None:
        if self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"childguard/{key}", n)

    def page_request(self, url: str, depth: int) -> scrapy.Request | None:
        """The request for a page link, or None (seen already, or refused by a loop guard).
        A calendar or trap page is held back (see `childguard.crawl.priority`) and None is
        returned; it is scheduled when the crawl has nothing else to do."""
        if url in self._pages:
            return None
        if len(self._pages) >= self.watch.max_pages * SEEN_FACTOR:
            self._stat("pages_over_limit")
            return None
        if max_segment_repeats(url) > self.watch.max_segment_repeats:
            self._stat("pages_loop_refused")
            log.info("page_skipped", url=url, reason="path repeats a segment (link loop)")
            return None
        shape = url_shape(url)
        if self._shapes[
            shape
        ] >= self.watch.max_pages_per_pattern and not self.ranker.showed_images(url):
            self._stat("pages_pattern_refused")
            if shape not in self._refused_shapes:  # logged once per shape; counted every time
                self._refused_shapes.add(shape)
                log.info(
                    "page_skipped",
                    url=url,
                    reason=f"more than {self.watch.max_pages_per_pattern} pages shaped {shape}",
                )
            return None
        kind = self.ranker.kind(url)
        if kind in HELD_BACK and len(self._held[kind]) >= self.watch.max_pages:
            return None  # more than the limit could ever spend
        self._shapes[shape] += 1
        self._pages.add(url)
        request = scrapy.Request(
            url,
            callback=self.parse_page,
            errback=self.page_failed,
            priority=self.ranker.priority(kind, depth),
            meta=self._meta(
                cg_depth=depth,
                cg_kind=kind.value,
                handle_httpstatus_list=PAGE_STATUSES,
                download_maxsize=self.page_maxsize,
            ),
        )
        if kind in HELD_BACK:
            self._held[kind].append(request)
            self._stat(f"pages_held_{kind.value}")
            return None
        return request

    def spend_page(self, request: scrapy.Request) -> bool:
        """Spend one page of the watch's limit on `request` as it goes to the downloader;
        False once the limit is spent (the request is then dropped)."""
        if self._spent >= self.watch.max_pages:
            self._stat("pages_over_limit")
            return False
        self._spent += 1
        self._stat(f"pages_spent_{request.meta.get('cg_kind', 'other')}")
        return True

    def image_request(self, url: str, page_url: str) -> scrapy.Request | ImageItem | None:
        """What fetches an image URL once per run: an `ImageItem` to fetch, which a hash worker
        downloads and hashes (`childguard.crawl.imagefetch`), or, when the crawl fetches images
        through Scrapy (a proxy), a request; None when seen already or over the limit."""
        if url in self._images:
            return None
        if len(self._images) >= self.watch.max_images:
            self._stat("images_over_limit")
            return None
        self._images.add(url)
        maxsize = VIDEO_MAXSIZE if is_video_url(url) else None  # videos may exceed the image cap
        if self.context.fetch_in_workers:
            return ImageItem(url=url, page_url=page_url, status=0, fetch=True, maxsize=maxsize)
        meta = self._meta(
            cg_image=True,
            cg_page=page_url,
            allow_offsite=True,
            handle_httpstatus_list=IMAGE_STATUSES,
        )
        if maxsize is not None:
            meta["download_maxsize"] = maxsize
        return scrapy.Request(
            url,
            callback=self.parse_image,
            errback=self.image_failed,
            priority=IMAGE_PRIORITY,
            meta=meta,
        )

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> WatchSpider:
        spider: WatchSpider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider._recheck_when_idle, signal=signals.spider_idle)
        return spider

    def _slow_start(self) -> None:
        """Cap the pages in flight at START_PAGES; `_page_answered` lifts the cap."""
        downloader = self.crawler.engine.downloader
        self._full_concurrency = downloader.total_concurrency
        if self.context.fetch_in_workers and 0 < START_PAGES < self._full_concurrency:
            downloader.total_concurrency = START_PAGES

    def _page_answered(self) -> None:
        """Double the pages in flight (slow start), up to the crawl's CONCURRENT_REQUESTS."""
        if not self._full_concurrency:  # no cap was set (or none applies)
            return
        downloader = self.crawler.engine.downloader
        if downloader.total_concurrency < self._full_concurrency:
            downloader.total_concurrency = min(
                self._full_concurrency, 2 * downloader.total_concurrency
            )

    async def start(self) -> AsyncIterator[Any]:
        self._slow_start()
        for url in self.watch.seeds:
            if is_media_url(url):
                for item in self._images_of(url, [url]):
                    yield item
                continue
            req = self.page_request(url, 0)
            if req is not None:
                yield req

    def _recheck_when_idle(self) -> None:
        """Run when the crawl has nothing left to do. Pages of earlier sightings come first:
        they are always revisited, so removals are seen; they are queued once the walk from the
        seeds is done, so that a page the walk reaches is fetched at its own depth (and its
        links followed), not claimed early as a leaf. Then the held-back calendar pages, then
        the traps, one kind at a time, while the page limit lasts."""
        pending, self.context.recheck_pages = self.context.recheck_pages, []
        queued = False
        for url in pending:
            req = self.page_request(url, self.watch.max_depth)
            if req is not None:
                self.crawler.engine.crawl(req)
                queued = True
        if not queued and self._spent < self.watch.max_pages:
            for kind in HELD_BACK:
                held, self._held[kind] = self._held[kind], []
                if not held:
                    continue
                room = self.watch.max_pages - self._spent
                for req in sorted(held, key=lambda r: -r.priority)[:room]:
                    self.crawler.engine.crawl(req)
                queued = True
                break
        if queued:
            raise DontCloseSpider

    # -- responses ----------------------------------------------------------------------
    @staticmethod
    def _first_url(response: Response) -> str:
        redirects = response.meta.get("redirect_urls") or []
        return str(redirects[0]) if redirects else response.url

    def parse_page(self, response: Response) -> Iterator[Any]:
        self._page_answered()
        url = self._first_url(response)
        depth = int(response.meta.get("cg_depth", 0))
        if response.status in PAGE_STATUSES:
            self._stat("pages_gone")
            yield PageItem(url=url, status=response.status, gone=True)
            return
        self._stat("pages_fetched")
        if not isinstance(response, TextResponse):
            if (
                sniff_content_type(response.body[:64]) is not None
            ):  # an image or video served where a page was linked
                yield PageItem(url=url, status=response.status, image_urls=[response.url])
                yield from self._images_of(url, [response.url])
                return
            log.info(
                "page_not_html",
                url=url,
                content_type=(response.headers.get("Content-Type") or b"").decode("latin-1"),
            )
            self._stat("pages_not_html")
            yield PageItem(url=url, status=response.status)
            return
        try:
            extracted = extract_page(response.text, response.url)
        except Exception as exc:  # lxml is lenient; anything else is logged and the page skipped
            log.warning("page_unparseable", url=url, error=str(exc))
            self._stat("pages_unparseable")
            yield PageItem(url=url, status=response.status)
            return
        host = urlsplit(response.url).hostname or ""
        profile = self.watch.profile_for(host)
        counters = read_counters(response.text, response.url, profile) if profile else None
        images = extracted.image_urls
        if images:
            self.ranker.saw_images(url)
        yield PageItem(
            url=url,
            status=response.status,
            title=extracted.title,
            image_urls=images,
            counters=counters,
        )
        # Links first: Scrapy works through a callback's output a few at a time, and an image
        # to fetch waits for a hash worker, so links yielded after the images would hold back
        # the next pages (and the images they show) until this page's images were done.
        if depth < self.watch.max_depth:
            for link in extracted.links:
                link_host = (urlsplit(link).hostname or "").lower()
                if not any(
                    link_host == d or link_host.endswith("." + d) for d in self.allowed_domains
                ):
                    continue
                req = self.page_request(link, depth + 1)
                if req is not None:
                    yield req
        yield from self._images_of(url, images)

    def _images_of(self, page_url: str, urls: list[str]) -> Iterator[Any]:
        """What fetches the images `urls` of a page: one `ImageBatch` of those still to fetch
        (the hash workers fetch them), or a request for each (through a proxy)."""
        batch = ImageBatch(page_url)
        for image in urls:
            req = self.image_request(image, page_url)
            if isinstance(req, ImageItem):
                batch.images.append(req)
            elif req is not None:
                yield req
        if batch.images:
            yield batch

    def parse_image(self, response: Response) -> Iterator[ImageItem]:
        page = str(response.meta.get("cg_page") or response.url)
        url = self._first_url(response)
        if response.status == 304:
            yield ImageItem(url=url, page_url=page, status=304, not_modified=True)
            return
        if response.status in (404, 410):
            self._stat("images_gone")
            yield ImageItem(url=url, page_url=page, status=response.status, gone=True)
            return
        body = response.body
        if sniff_content_type(body[:64]) is None:  # photos and videos go on alike
            ctype = (response.headers.get("Content-Type") or b"").decode("latin-1")
            self._stat("images_not_an_image")
            log.warning(
                "image_not_an_image", url=url, page=page, content_type=ctype, bytes=len(body)
            )
            yield ImageItem(
                url=url,
                page_url=page,
                status=response.status,
                error=f"not an image or video (Content-Type {ctype or 'missing'})",
            )
            return
        self._stat("image_bytes", len(body))
        yield ImageItem(
            url=url,
            page_url=page,
            status=response.status,
            body=body,
            etag=_header(response, b"ETag"),
            last_modified=_header(response, b"Last-Modified"),
        )

    # -- failures -----------------------------------------------------------------------
    def _why(self, failure: Failure) -> str:
        exc = failure.value
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__

    def page_failed(self, failure: Failure) -> None:
        self._page_answered()
        request = getattr(failure, "request", None)
        if request is not None and request.meta.get("cg_over_limit"):
            return  # dropped by the page limit, counted as pages_over_limit
        self._stat("pages_failed")
        log.warning("page_failed", url=getattr(request, "url", None), error=self._why(failure))

    def image_failed(self, failure: Failure) -> Iterator[ImageItem]:
        request = getattr(failure, "request", None)
        url = getattr(request, "url", "")
        page = str(request.meta.get("cg_page") or url) if request is not None else url
        self._stat("images_failed")
        why = self._why(failure)
        log.warning("image_failed", url=url, page=page, error=why)
        if request is not None:
            yield ImageItem(url=url, page_url=page, status=0, error=why[:500])


def _header(response: Response, name: bytes) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
