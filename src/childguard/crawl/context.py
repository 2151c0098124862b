# Owns what one crawl's spider, middlewares and pipelines share (CrawlContext) and what a crawl
# reports when it is done (CrawlStats).
"""The shared state and the result of one crawl of one watch."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from childguard.crawl.cache import ImageCache
from childguard.crawl.matching import MatchFn
from childguard.crawl.sightings import SightingRecorder
from childguard.crawl.watch import Watch
from childguard.netguard.ssrf import ALLOW_PRIVATE_HINT
from childguard.store.db import Store

PAGE_MAXSIZE = 8 * 1024 * 1024


@dataclass
class CrawlContext:
    """What the spider, middlewares and pipelines of one crawl share."""

    watch: Watch
    store: Store
    cache: ImageCache
    matcher: MatchFn
    recorder: SightingRecorder
    hash_pool: Any  # a `childguard.crawl.hashqueue.ForkPool` or an Executor
    run_id: int | None
    hash_workers: int = 1
    hash_queue_depth: int | None = None  # default: twice the workers
    recheck_pages: list[str] = field(default_factory=list)
    page_maxsize: int = PAGE_MAXSIZE
    robust: bool = True
    # Images fetched by the hash workers themselves (`childguard.crawl.imagefetch`), not by
    # Scrapy; False through a proxy, or with CHILDGUARD_IMAGE_FETCH = "scrapy".
    fetch_in_workers: bool = False


@dataclass
class CrawlStats:
    run_id: int | None
    watch: str
    pages: int = 0
    pages_gone: int = 0
    pages_failed: int = 0
    images: int = 0
    images_hashed: int = 0
    images_cached: int = 0
    images_not_modified: int = 0
    images_failed: int = 0
    images_matched: int = 0
    new_sightings: int = 0
    updated_sightings: int = 0
    sightings_removed: int = 0
    sightings_changed: int = 0
    ssrf_refused: int = 0
    stage_errors: int = 0
    stage_error: str = ""
    image_bytes: int = 0
    elapsed_s: float = 0.0
    finish_reason: str = ""
    scrapy: dict[str, Any] = field(default_factory=dict)

    def problem(self) -> str | None:
        """Why this crawl counts as failed although it ran, or None: a stage of it raised (a
        spider callback, an item pipeline, or the last writes at its close: what it found may
        not all be recorded), or it fetched no page at all (its requests refused by the SSRF
        policy, or failed)."""
        if self.stage_errors:
            return f"{self.stage_errors} crawl stage error(s), the first: {self.stage_error}"
        if self.pages or self.pages_gone:
            return None
        if self.ssrf_refused:
            return (
                f"no page could be fetched: {self.ssrf_refused} request(s) refused by the SSRF "
                f"policy; {ALLOW_PRIVATE_HINT}"
            )
        if self.pages_failed:
            return f"no page could be fetched ({self.pages_failed} failed)"
        return "no page could be fetched"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problem"] = self.problem()
        return data


def stage_failed(stats: Any, why: str) -> None:
    """Count a crawl stage that raised in the crawl's stats, keeping the first reason."""
    stats.inc_value("childguard/stage_errors")
    if not stats.get_value("childguard/stage_error"):
        stats.set_value("childguard/stage_error", why[:500])
