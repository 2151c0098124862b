"""Scrapy item pipelines: hash the image, match it, record sightings (in that order).

- `HashPipeline` reuses the cache: a `304 Not Modified` or bytes whose sha256 is
  already known cost no decode; anything else is hashed in a process pool off the
  reactor through a bounded queue (`childguard.crawl.hashqueue.HashQueue`): while
  the queue is full Scrapy's engine is paused, so the downloader fetches no more
  than the workers can hash.
  The image bytes are dropped from the item as soon as they are hashed. With the
  crawl's `robust` option (default on) images also get robust views, and ORB features
  when the matcher says it needs them (`needs_features`); cached hashes that lack them
  are computed again (a 304 for such content is fetched once more, unconditionally).
- `MatchPipeline` calls the crawl's matcher (`match(ContentSignals) -> list[Match]`).
- `SightingPipeline` feeds the `SightingRecorder` and reconciles at close.
The crawl context (store, cache, matcher, recorder) hangs off the spider (`spider.context`).
"""

from __future__ import annotations

import functools
import hashlib
from typing import TYPE_CHECKING, Any

from childguard.crawl.hashing import has_extras, hash_fetched, sha256_of
from childguard.crawl.hashqueue import HashQueue
from childguard.crawl.items import ImageItem, PageItem
from childguard.log import get_logger
from childguard.signals.content import ContentSignals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from childguard.crawl.context import CrawlContext

log = get_logger("childguard.crawl.pipelines")


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


class HashPipeline(_ContextPipeline):
    _options: tuple[bool, bool] | None = None
    _queue: HashQueue | None = None

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
            )
        return self._queue

    def options(self) -> tuple[bool, bool]:
        """(robust, features) for this crawl; asks the matcher once whether it needs features."""
        if self._options is None:
            robust = self.context.robust
            features = robust and bool(getattr(self.context.matcher, "needs_features", False))
            self._options = (robust, features)
        return self._options

    async def _hash(self, body: bytes) -> ContentSignals:
        robust, features = self.options()
        job = functools.partial(hash_fetched, robust=robust, features=features)
        return await self.queue.run(job, body)

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

    async def process_item(self, item: Any) -> Any:
        if not isinstance(item, ImageItem) or item.gone or item.error:
            return item
        cache = self.context.cache
        robust, features = self.options()
        if item.not_modified:
            cache.touch(item.url)
            v = cache.validators(item.url)
            item.hashes = cache.hashes(v.sha256) if v and v.sha256 else None
            self.inc("images_not_modified")
            if item.hashes is None:
                item.error = "304 for an image the cache does not know"
            elif not has_extras(item.hashes, robust=robust, features=features):
                # Hashed before robust views or features were wanted: fetch it once more.
                body = await self._refetch(item.url)
                if body is not None and hashlib.sha256(body).hexdigest() == sha256_of(item.hashes):
                    item.hashes = await self._hash(body)
                    item.rehashed = True
                    self.inc("images_rehashed_robust")
                    assert v is not None  # the hashes came through these validators
                    cache.remember(item.url, v.etag, v.last_modified, item.hashes)
            return item
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
            item.hashes = await self._hash(body)
            item.rehashed = True
            self.inc("images_hashed")
            if known is not None:
                self.inc("images_rehashed_robust")
        cache.remember(item.url, item.etag, item.last_modified, item.hashes)
        if item.hashes.error:
            self.inc("images_undecodable")
            log.warning(
                "image_undecodable", url=item.url, page=item.page_url, error=item.hashes.error
            )
        return item

    def close_spider(self, spider: Any = None) -> None:
        self.context.cache.flush()
        if self._queue is not None:
            for key, value in self._queue.stats().items():
                assert self.crawler.stats is not None
                self.crawler.stats.set_value(f"childguard/{key}", value)


class MatchPipeline(_ContextPipeline):
    def process_item(self, item: Any) -> Any:
        if isinstance(item, ImageItem) and item.hashes is not None:
            try:
                item.matches = list(self.context.matcher(item.hashes))
            except Exception as exc:  # a matcher failure loses one image, not the crawl
                item.error = f"matcher failed: {exc}"
                log.error("match_failed", url=item.url, error=str(exc))
                self.inc("match_errors")
            if item.matches:
                self.inc("images_matched")
        return item


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
        elif isinstance(item, ImageItem):
            recorder.image(
                item.url,
                page_url=item.page_url,
                gone=item.gone,
                hashes=item.hashes,
                matches=item.matches,
            )
        return item

    def close_spider(self, spider: Any = None) -> None:
        changes = self.context.recorder.finish()
        self.inc("sightings_removed", changes["removed"])
        self.inc("sightings_changed", changes["changed"])
