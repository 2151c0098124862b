"""Scrapy item pipelines: hash the image, match it, record sightings (in that order).

- `HashPipeline` reuses the cache: a `304 Not Modified` or bytes whose sha256 is
  already known cost no decode; anything else is hashed in a process pool off the
  reactor through a bounded queue (`childguard.crawl.hashqueue.HashQueue`): while
  the queue is full Scrapy's engine is paused, so the downloader fetches no more
  than the workers can hash. An image still to fetch (`ImageItem.fetch`) is fetched
  by the worker that hashes it (`childguard.crawl.imagefetch.fetch_image`, with the
  cache's validators), behind the per-host politeness gate (`HostGate`); the outcome
  is counted in the crawl's stats as Scrapy's image responses are.
  The image bytes are dropped from the item as soon as they are hashed. With the
  crawl's `robust` option (default on) images also get robust views, and ORB features
  when the matcher says it needs them (`needs_features`); cached hashes that lack them
  are computed again (a 304 for such content is fetched once more, unconditionally).
- `MatchPipeline` calls the crawl's matcher (`match(ContentSignals) -> list[Match]`).
- `SightingPipeline` feeds the `SightingRecorder` and reconciles at close.
The crawl context (store, cache, matcher, recorder) hangs off the spider (`spider.context`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from childguard.crawl.context import stage_failed
from childguard.crawl.hashing import has_extras, hash_fetched, sha256_of
from childguard.crawl.hashqueue import HashQueue
from childguard.crawl.imagefetch import FetchOutcome, HostGate, ImageJob, fetch_image
from childguard.crawl.items import ImageBatch, ImageItem, PageItem
from childguard.log import get_logger
from childguard.signals.content import ContentSignals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from childguard.crawl.context import CrawlContext

log = get_logger("childguard.crawl.pipelines")
# With images fetched by the workers, the engine (which then only fetches pages) is paused once
# this many images wait for a worker: pages keep coming while the workers are busy, and the
# images they show wait in bounded numbers.
WAITING_PAUSE = 256


class _ContextPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Any:
        return cls(crawler)

    @property
    def context(self) -> CrawlContext:
        ctx: CrawlContext = self.crawler.spider.context  # type: ignore[union-attr]
        return ctx

    def inc(self, key: str, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"childguard/{key}", n)

    def closing(self, stage: str, finish: Callable[[], None]) -> None:
        """Run a pipeline's last step; if it raises, the crawl counts it as a stage error and
        fails (Scrapy would only log it, and the crawl would look finished)."""
        try:
            finish()
        except Exception as exc:
            assert self.crawler.stats is not None
            stage_failed(self.crawler.stats, f"{stage}: {type(exc).__name__}: {exc}")
            log.error("crawl stage failed", stage=stage, error=repr(exc))


class HashPipeline(_ContextPipeline):
    _options: tuple[bool, bool] | None = None
    _queue: HashQueue | None = None
    _gate: HostGate | None = None

    @property
    def queue(self) -> HashQueue:
        """The bounded queue in front of the crawl's pool; full, it pauses the engine."""
        if self._queue is None:
            try:
                engine = self.crawler.engine
            except RuntimeError:  # a stage on its own, with no engine to pause
                engine = None

            def pause() -> None:
                if engine is not None:
                    engine.pause()

            def resume() -> None:
                if engine is None:
                    return
                engine.unpause()
                slot = getattr(engine, "_slot", None)
                if slot is not None:  # schedule the next requests now, not at the heartbeat
                    slot.nextcall.schedule()

            ctx = self.context
            self._queue = HashQueue(
                ctx.hash_pool,
                ctx.hash_workers,
                depth=ctx.hash_queue_depth,
                on_full=pause,
                on_free=resume,
                pause_waiting=WAITING_PAUSE if ctx.fetch_in_workers else None,
            )
        return self._queue

    def options(self) -> tuple[bool, bool]:
        """(robust, features) for this crawl; asks the matcher once whether it needs features."""
        if self._options is None:
            robust = self.context.robust
            features = robust and bool(getattr(self.context.matcher, "needs_features", False))
            self._options = (robust, features)
        return self._options

    async def _hash(self, body: bytes, sha256: str) -> ContentSignals:
        robust, features = self.options()
        job = functools.partial(hash_fetched, robust=robust, features=features, sha256=sha256)
        return await self.queue.run(job, body)

    @property
    def gate(self) -> HostGate:
        """Per-host politeness of the workers' image fetches (the crawl's own settings)."""
        if self._gate is None:
            settings = self.crawler.settings
            self._gate = HostGate(
                settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN", 8),
                settings.getfloat("DOWNLOAD_DELAY", 0.0),
                settings.getfloat("DOWNLOAD_DELAY_JITTER", 0.5)
                if settings.getbool("RANDOMIZE_DOWNLOAD_DELAY", True)
                else 0.0,
            )
        return self._gate

    async def _worker_fetch(self, job: ImageJob) -> FetchOutcome:
        """`job` fetched and hashed by a hash worker, once the host's gate lets it start. With
        no delay, and a per-host limit at least the queue's depth (the most fetches that can be
        under way at once), the gate could never hold one back, and is skipped."""
        gate = self.gate
        if gate.delay <= 0 and gate.concurrency >= self.queue.depth:
            return await self.queue.run(fetch_image, job)
        async with gate.slot((urlsplit(job.url).hostname or "").lower()):
            return await self.queue.run(fetch_image, job)

    async def _refetch(self, url: str) -> bytes | None:
        """The image's bytes, fetched again without validators (None if that fails)."""
        from scrapy import Request

        assert self.crawler.engine is not None
        request = Request(url, dont_filter=True, meta={"cg_refetch": True})
        try:
            response = await self.crawler.engine.download_async(request)
        except Exception as exc:  # keep the cached hashes; the crawl goes on
            log.warning("image_refetch_failed", url=url, error=str(exc))
            return None
        return response.body if response.status == 200 and response.body else None

    async def _rehash(self, url: str, sha256: str) -> ContentSignals | None:
        """Signals of `url` fetched again without validators and hashed (with this crawl's
        options), if it still serves the bytes of `sha256`; None otherwise."""
        robust, features = self.options()
        if self.context.fetch_in_workers:
            job = ImageJob(url, robust=robust, features=features, force=True)
            out = await self._worker_fetch(job)
            if out.hashes is not None and out.sha256 == sha256:
                return out.hashes
            if out.error:
                log.warning("image_refetch_failed", url=url, error=out.error)
            return None
        body = await self._refetch(url)
        if body is not None and hashlib.sha256(body).hexdigest() == sha256:
            return await self._hash(body, sha256)
        return None

    async def _not_modified(self, item: ImageItem) -> ImageItem:
        cache = self.context.cache
        robust, features = self.options()
        cache.touch(item.url)
        v = cache.validators(item.url)
        item.hashes = cache.hashes(v.sha256) if v and v.sha256 else None
        self.inc("images_not_modified")
        if item.hashes is None:
            item.error = "304 for an image the cache does not know"
        elif not has_extras(item.hashes, robust=robust, features=features):
            # Hashed before robust views or features were wanted: fetch it once more.
            fresh = await self._rehash(item.url, sha256_of(item.hashes))
            if fresh is not None:
                item.hashes = fresh
                item.rehashed = True
                self.inc("images_rehashed_robust")
                assert v is not None  # the hashes came through these validators
                cache.remember(item.url, v.etag, v.last_modified, item.hashes)
        return item

    def _count_failure(self, item: ImageItem, out: FetchOutcome) -> None:
        """Stats and logs of an image fetch that brought no bytes to hash, as the spider counts
        Scrapy's image responses and failures."""
        if out.gone:
            self.inc("images_gone")
            return
        if out.not_an_image:
            self.inc("images_not_an_image")
            log.warning(
                "image_not_an_image",
                url=item.url,
                page=item.page_url,
                content_type=out.content_type,
                bytes=out.nbytes,
            )
            return
        if out.refused is not None:
            self.inc("ssrf_refused")
            log.warning("ssrf_refused", url=item.url, reason=out.refused)
        if out.robots_forbidden:
            self.inc("images_robots_forbidden")
        self._failed(item, out.error)

    def _failed(self, item: ImageItem, error: str | None) -> None:
        """An image that could not be fetched or hashed: its error, counted and logged."""
        item.error = error
        self.inc("images_failed")
        log.warning("image_failed", url=item.url, page=item.page_url, error=error)

    async def _fetched(self, item: ImageItem) -> ImageItem:
        """An image still to fetch, fetched and hashed by a worker; its item as Scrapy's
        response would have made it, hashed (or the cache's signals for known bytes)."""
        cache = self.context.cache
        robust, features = self.options()
        v = cache.validators(item.url)
        conditional = v is not None and bool(v.sha256)
        job = ImageJob(
            item.url,
            etag=v.etag if v is not None and conditional else None,
            last_modified=v.last_modified if v is not None and conditional else None,
            maxsize=item.maxsize,
            robust=robust,
            features=features,
        )
        out = await self._worker_fetch(job)
        item.fetch = False
        item.status, item.etag, item.last_modified = out.status, out.etag, out.last_modified
        if out.retries:
            self.inc("images_retried", out.retries)
        if out.error or out.gone:
            item.gone = out.gone
            item.error = out.error
            self._count_failure(item, out)
            return item
        if out.not_modified:
            item.not_modified = True
            return await self._not_modified(item)
        self.inc("image_bytes", out.nbytes)
        assert out.sha256 is not None
        known = cache.hashes(out.sha256)
        if out.hashes is None:  # bytes the worker knew: take the cache's signals
            if known is not None and has_extras(known, robust=robust, features=features):
                item.hashes = known
                self.inc("images_cached_content")
            else:
                forced = await self._worker_fetch(
                    ImageJob(
                        item.url, maxsize=item.maxsize, robust=robust, features=features, force=True
                    )
                )
                if forced.hashes is None:
                    self._failed(item, forced.error or "the image changed while it was fetched")
                    return item
                item.hashes = forced.hashes
                item.etag, item.last_modified = forced.etag, forced.last_modified
                self._hashed(known)
        else:
            item.hashes = out.hashes
            self._hashed(known)
        item.rehashed = item.hashes is not known
        self._remember(item)
        return item

    async def _fetched_or_failed(self, item: ImageItem) -> ImageItem:
        """`_fetched`, with a failure (a hash worker died) costing this image, not its page's."""
        try:
            return await self._fetched(item)
        except Exception as exc:
            item.fetch = False
            self._failed(item, f"{type(exc).__name__}: {exc}"[:500])
            return item

    def _hashed(self, known: ContentSignals | None) -> None:
        self.inc("images_hashed")
        if known is not None:
            self.inc("images_rehashed_robust")

    def _remember(self, item: ImageItem) -> None:
        assert item.hashes is not None
        self.context.cache.remember(item.url, item.etag, item.last_modified, item.hashes)
        if item.hashes.error:
            self.inc("images_undecodable")
            log.warning(
                "image_undecodable", url=item.url, page=item.page_url, error=item.hashes.error
            )

    async def process_item(self, item: Any) -> Any:
        if isinstance(item, ImageBatch):  # a page's images, fetched and hashed side by side
            await asyncio.gather(*(self._fetched_or_failed(image) for image in item.images))
            return item
        if not isinstance(item, ImageItem):
            return item
        if item.fetch:
            return await self._fetched(item)
        if item.gone or item.error:
            return item
        if item.not_modified:
            return await self._not_modified(item)
        cache = self.context.cache
        robust, features = self.options()
        body, item.body = item.body, None
        if not body:
            item.error = "empty image response"
            return item
        sha = hashlib.sha256(body).hexdigest()
        known = cache.hashes(sha)
        if known is not None and has_extras(known, robust=robust, features=features):
            item.hashes = known
            self.inc("images_cached_content")
        else:
            item.hashes = await self._hash(body, sha)
            item.rehashed = True
            self._hashed(known)
        self._remember(item)
        return item

    def close_spider(self, spider: Any = None) -> None:
        self.closing("content cache writes", self.context.cache.flush)
        if self._queue is not None:
            for key, value in self._queue.stats().items():
                assert self.crawler.stats is not None
                self.crawler.stats.set_value(f"childguard/{key}", value)


class MatchPipeline(_ContextPipeline):
    def process_item(self, item: Any) -> Any:
        if isinstance(item, ImageBatch):
            for image in item.images:
                self._match(image)
        elif isinstance(item, ImageItem):
            self._match(item)
        return item

    def _match(self, item: ImageItem) -> None:
        if item.hashes is None:
            return
        try:
            item.matches = list(self.context.matcher(item.hashes))
        except Exception as exc:  # one image unmatched: the crawl goes on, and ends failed
            item.error = f"matcher failed: {exc}"
            log.error("match_failed", url=item.url, error=str(exc))
            self.inc("match_errors")
            assert self.crawler.stats is not None
            stage_failed(self.crawler.stats, f"matcher on {item.url}: {exc}")
        if item.matches:
            self.inc("images_matched")


class SightingPipeline(_ContextPipeline):
    def process_item(self, item: Any) -> Any:
        recorder = self.context.recorder
        if isinstance(item, PageItem):
            recorder.page(
                item.url,
                title=item.title,
                image_urls=item.image_urls,
                gone=item.gone,
                counters=item.counters,
            )
        elif isinstance(item, ImageItem | ImageBatch):
            for image in item.images if isinstance(item, ImageBatch) else [item]:
                recorder.image(
                    image.url,
                    page_url=image.page_url,
                    gone=image.gone,
                    hashes=image.hashes,
                    matches=image.matches,
                )
        return item

    def close_spider(self, spider: Any = None) -> None:
        def finish() -> None:
            changes = self.context.recorder.finish()
            self.inc("sightings_removed", changes["removed"])
            self.inc("sightings_changed", changes["changed"])

        self.closing("sighting writes", finish)
