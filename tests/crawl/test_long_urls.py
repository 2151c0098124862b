"""Long URLs and over-long validators lose nothing, on SQLite and on PostgreSQL.

PostgreSQL used to refuse a URL over 2,000 characters and a sighting whose page and image
URLs together passed its B-tree row limit, so those sightings were lost there only.
"""

from __future__ import annotations

import secrets
from typing import Any

from childguard.crawl.cache import ImageCache
from childguard.crawl.extract import PageCounters
from childguard.crawl.hashing import hash_fetched
from childguard.crawl.runner import run_crawl
from childguard.crawl.sightings import SightingRecorder, get_sighting, list_sightings
from childguard.crawl.watch import Watch
from childguard.store import Store
from childguard.store.crawl_models import CrawlRun
from childguard.store.db import open_store
from match_factory import entry_match


def _long(prefix: str, length: int) -> str:
    """`prefix` with a random (incompressible) query string, `length` characters in all."""
    token = secrets.token_hex(length)
    return f"{prefix}?t={token}"[:length]


def test_a_crawl_keeps_sightings_of_long_urls(
    site: Any, store_url: str, make_photo: Any, bank_matcher: Any
) -> None:
    protected = make_photo(31)
    page_path = _long("/gallery", 2600)
    image_path = _long("/photo.jpg", 3000)  # over Scrapy's default URL limit of 2,083
    site.page("/", f'<a href="{page_path}">album</a>')
    site.page(page_path, f'<title>Album</title><img src="{image_path}">')
    long_etag = '"' + "e" * 700 + '"'  # longer than the store keeps: dropped, not fatal
    site.image(image_path, protected, headers={"ETag": long_etag})
    watch = Watch(name="long", seeds=(site.url("/"),), download_delay=0)
    matcher = bank_matcher({1: protected}, url=store_url)
    for run in (1, 2):
        stats = run_crawl(
            watch, store_url=store_url, matcher=matcher, allow_private=True, hash_workers=0
        )
        assert stats.images == 1 and stats.images_not_modified == 0  # no 304: no validator
        assert stats.new_sightings == (1 if run == 1 else 0)
    assert site.count(image_path) == 2
    with open_store(store_url) as store:
        rows = list_sightings(store)
    assert [(r.page_url, r.image_url) for r in rows] == [
        (site.url(page_path), site.url(image_path))
    ]
    assert rows[0].times_seen == 2 and rows[0].status == "online"
    assert "If-None-Match" not in site.requests_to(image_path)[-1]


def test_recorder_and_cache_key_long_urls(store: Store, make_photo: Any) -> None:
    page, image = _long("https://example.org/p", 5000), _long("https://cdn.example.org/i", 4000)
    twin = image[:-1] + ("0" if image[-1] != "0" else "1")  # differs in the last character only
    hashes = hash_fetched(make_photo(32))
    match = entry_match(store, distance=3, bank="b", bank_kind="protected")
    for run_id in (None, None):
        recorder = SightingRecorder(store, run_id=run_id, watch_name="w")
        recorder.page(page, title="t", image_urls=[image, twin], gone=False)
        recorder.image(image, page_url=page, gone=False, hashes=hashes, matches=[match])
        recorder.image(twin, page_url=page, gone=False, hashes=hashes, matches=[match])
        assert recorder.finish() == {"removed": 0, "changed": 0}
    rows = list_sightings(store)
    assert sorted(r.image_url for r in rows) == sorted([image, twin])
    assert {r.times_seen for r in rows} == {2}
    # The page no longer shows the twin: only that sighting is removed.
    recorder = SightingRecorder(store, run_id=None, watch_name="w")
    recorder.page(page, title="t", image_urls=[image], gone=False)
    assert recorder.finish() == {"removed": 1, "changed": 0}
    status = {r.image_url: r.status for r in list_sightings(store)}
    assert status == {image: "online", twin: "removed"}

    cache = ImageCache(store)
    cache.remember(image, '"' + "x" * 600 + '"', "Mon, 01 Jan 2024 00:00:00 GMT", hashes)
    cache.remember(twin, '"short"', "L" * 200, hashes)
    cache.flush()
    fresh = ImageCache(store)
    got, got_twin = fresh.validators(image), fresh.validators(twin)
    assert got is not None and got_twin is not None
    assert (got.etag, got.last_modified) == (None, "Mon, 01 Jan 2024 00:00:00 GMT")
    assert (got_twin.etag, got_twin.last_modified) == ('"short"', None)
    assert got.sha256 == hashes.value("sha256")
    preloaded = ImageCache(store)
    assert preloaded.preload() and preloaded.validators(twin) == got_twin


def test_page_counters_of_long_urls(store: Store) -> None:
    page, image = _long("https://example.org/album", 3000), _long("https://example.org/i", 3000)
    with store.session() as s:
        run = CrawlRun(watch_name="c")
        s.add(run)
        s.flush()
        run_id = run.id
    recorder = SightingRecorder(store, run_id=run_id, watch_name="c")
    counters = PageCounters(views=10, comments=2, per_image_views={image: 7})
    recorder.page(page, title="", image_urls=[image], gone=False, counters=counters)
    recorder.page(page, title="", image_urls=[image], gone=False, counters=counters)  # no dup
    hashes = hash_fetched(b"not an image")
    match = entry_match(store, signal_type="sha256", value=hashes.value("sha256") or "")
    recorder.image(image, page_url=page, gone=False, hashes=hashes, matches=[match])
    (row,) = list_sightings(store)
    view = get_sighting(store, row.id)
    assert view is not None
    assert sorted((c["image_url"] or "", c["views"]) for c in view.counters) == [
        ("", 10),
        (image, 7),
    ]
