"""Downloader middlewares of the crawler (the SSRF guard lives in `childguard.netguard.ssrf`).

`ConditionalImageMiddleware` turns an image request for a URL the cache knows
into a conditional request (`If-None-Match`, `If-Modified-Since`); the server's
`304 Not Modified` then reaches the spider, and the hash pipeline reuses the
stored hashes instead of downloading and hashing again.

`PageBudgetMiddleware` spends the watch's page limit as each page request goes to the
downloader (the spider's `spend_page`), so the limit goes to pages in the order the
scheduler hands them out (their priorities), not in the order their links were seen.

`BackoffRetryMiddleware` is Scrapy's retry with an exponential pause between tries.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.settings import BaseSettings

if TYPE_CHECKING:
    from scrapy.crawler import Crawler


class ConditionalImageMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConditionalImageMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        if not request.meta.get("cg_image"):
            return
        context = getattr(self.crawler.spider, "context", None)
        if context is None:
            return
        v = context.cache.validators(request.url)
        if v is None or not v.sha256:
            return
        if v.etag and b"If-None-Match" not in request.headers:
            request.headers[b"If-None-Match"] = v.etag
        if v.last_modified and b"If-Modified-Since" not in request.headers:
            request.headers[b"If-Modified-Since"] = v.last_modified


class PageBudgetMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PageBudgetMiddleware:
        return cls(crawler)

    def process_request(self, request: Request, spider: Any = None) -> None:
        if "cg_depth" not in request.meta or request.meta.get("cg_spent"):
            return  # not a page (an image, robots.txt), or a retry or redirect of one
        spend = getattr(self.crawler.spider, "spend_page", None)
        if spend is None:
            return
        if not spend(request):
            request.meta["cg_over_limit"] = True
            raise IgnoreRequest("over the watch's page limit")
        request.meta["cg_spent"] = True


class BackoffRetryMiddleware(RetryMiddleware):
    """Scrapy's retry (same settings: RETRY_TIMES, RETRY_HTTP_CODES, RETRY_EXCEPTIONS) with an
    exponential pause before each retry: CHILDGUARD_RETRY_BACKOFF * 2**(n-1), capped at
    CHILDGUARD_RETRY_BACKOFF_MAX seconds."""

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff = settings.getfloat("CHILDGUARD_RETRY_BACKOFF", 0.5)
        self.backoff_max = settings.getfloat("CHILDGUARD_RETRY_BACKOFF_MAX", 30.0)

    async def _pause(self, result: Any) -> Any:
        if isinstance(result, Request) and self.backoff > 0:
            n = int(result.meta.get("retry_times", 1))
            await asyncio.sleep(min(self.backoff_max, self.backoff * 2 ** (n - 1)))
        return result

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: Any = None
    ) -> Request | Response:
        result = super().process_response(request, response)
        paused: Request | Response = await self._pause(result)
        return paused

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: Any = None
    ) -> Request | Response | None:
        result = super().process_exception(request, exception)
        paused: Request | Response | None = await self._pause(result)
        return paused
