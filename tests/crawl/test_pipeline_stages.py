"""Each crawl item pipeline on its own: built by `from_crawler` on a real Scrapy crawler, fed one
item, with the crawl context a run would give it (a real store, cache, matcher and recorder)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from scrapy import Spider
from scrapy.utils.test import get_crawler

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.crawl.cache import ImageCache
from childguard.crawl.context import CrawlContext
from childguard.crawl.hashing import hash_fetched
from childguard.crawl.items import ImageItem, PageItem
from childguard.crawl.pipelines import HashPipeline, MatchPipeline, SightingPipeline
from childguard.crawl.sightings import SightingRecorder, list_sightings
from childguard.crawl.watch import Watch
from childguard.matcher import Matcher
from childguard.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Any:
    opened = open_store(f"sqlite:///{tmp_path / 'crawl.db'}")
    yield opened
    opened.close()


def _stage(cls: type, store: Store, matcher: Any) -> Any:
    crawler = get_crawler(Spider)
    spider = Spider(name="t")
    spider.context = CrawlContext(  # type: ignore[attr-defined]
        watch=Watch(name="t", seeds=("https://example.org/",)),
        store=store,
        cache=ImageCache(store),
        matcher=matcher,
        recorder=SightingRecorder(store, run_id=None, watch_name="t"),
        hash_pool=ThreadPoolExecutor(1),
        run_id=None,
    )
    crawler.spider = spider
    assert crawler.stats is not None
    crawler.stats.open_spider()
    return cls.from_crawler(crawler)


def _bank(store: Store, data: bytes) -> Matcher:
    create_bank(store, "p", "protected", actor="t")
    pdq = hash_fetched(data).value("pdq") or ""
    import_records(store, "p", [EntryRecord("pdq", pdq)], actor="t", organisation="Scouts")
    return Matcher(store, persist=False)


def test_hash_stage_hashes_once_and_drops_the_bytes(store: Store, make_photo: Any) -> None:
    data = make_photo(3)
    stage = _stage(HashPipeline, store, lambda record: [])
    item = ImageItem(url="https://example.org/a.jpg", page_url="https://example.org/", status=200)
    item.body = data
    out = asyncio.run(stage.process_item(item))
    assert out.body is None and out.hashes is not None and out.hashes.value("pdq")
    assert out.hashes.views  # robust views for the matcher
    twin = ImageItem(url="https://example.org/b.jpg", page_url="https://example.org/", status=200)
    twin.body = data
    asyncio.run(stage.process_item(twin))  # the same bytes under another URL: from the cache
    stats = stage.crawler.stats.get_stats()
    assert stats["childguard/images_hashed"] == 1
    assert stats["childguard/images_cached_content"] == 1


def test_hash_stage_keeps_undecodable_bytes_with_their_exact_hashes(store: Store) -> None:
    stage = _stage(HashPipeline, store, lambda record: [])
    item = ImageItem(url="https://example.org/x.jpg", page_url="https://example.org/", status=200)
    item.body = b"<html>not an image</html>"
    out = asyncio.run(stage.process_item(item))
    assert out.hashes.error and out.hashes.value("sha256")
    assert stage.crawler.stats.get_value("childguard/images_undecodable") == 1


def test_match_stage_gives_the_matchers_own_matches(store: Store, make_photo: Any) -> None:
    data = make_photo(4)
    matcher = _bank(store, data)
    stage = _stage(MatchPipeline, store, matcher)
    item = ImageItem(url="https://example.org/a.jpg", page_url="https://example.org/", status=200)
    item.hashes = hash_fetched(data, robust=True)
    out = stage.process_item(item)
    (match,) = out.matches
    assert (match.bank_name, match.organisation, match.distance) == ("p", "Scouts", 0)


def test_match_stage_failure_costs_one_image(store: Store, make_photo: Any) -> None:
    def broken(record: Any) -> list[Any]:
        raise RuntimeError("index gone")

    stage = _stage(MatchPipeline, store, broken)
    item = ImageItem(url="https://example.org/a.jpg", page_url="https://example.org/", status=200)
    item.hashes = hash_fetched(make_photo(5))
    out = stage.process_item(item)
    assert out.error == "matcher failed: index gone" and out.matches == []
    assert stage.crawler.stats.get_value("childguard/match_errors") == 1


def test_sighting_stage_records_a_matched_image_on_its_page(store: Store, make_photo: Any) -> None:
    data = make_photo(6)
    matcher = _bank(store, data)
    stage = _stage(SightingPipeline, store, matcher)
    image = ImageItem(url="https://example.org/a.jpg", page_url="https://example.org/", status=200)
    image.hashes = hash_fetched(data, robust=True)
    image.matches = matcher(image.hashes)
    stage.process_item(
        PageItem(url="https://example.org/", status=200, image_urls=[image.url], title="Gallery")
    )
    assert list_sightings(store) == []  # a page alone is no sighting
    stage.process_item(image)
    stage.process_item(image)  # the same image twice in a run is one sighting, seen once
    (sighting,) = list_sightings(store)
    assert (sighting.page_title, sighting.bank, sighting.organisation) == ("Gallery", "p", "Scouts")
    assert sighting.times_seen == 1
    stage.close_spider()
    assert stage.crawler.stats.get_value("childguard/sightings_removed") == 0
