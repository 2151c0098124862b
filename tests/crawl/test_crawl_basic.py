"""End-to-end crawls with real Scrapy against pages served on 127.0.0.1."""

from __future__ import annotations

from typing import Any

from childguard.crawl.runner import run_crawl
from childguard.crawl.sightings import list_sightings
from childguard.crawl.watch import Watch
from childguard.store.db import open_store


def _watch(site: Any, **kw: Any) -> Watch:
    return Watch(name="t", seeds=(site.url("/"),), download_delay=0, **kw)


def test_crawl_finds_reposts_and_records_sightings(site: Any, db_url: str, make_photo: Any,
                                                   bank_matcher: Any) -> None:
    protected = make_photo(1)
    other = make_photo(2)
    site.page("/", '<html><title>Gallery</title><body><img src="/a.jpg"><a href="/p2">next</a></body></html>')
    site.page("/p2", '<html><title>Page 2</title><body><div style="background-image:url(b.jpg)"></div>'
                     '<img data-src="/a.jpg"></body></html>')
    site.image("/a.jpg", protected)
    site.image("/b.jpg", other)
    stats = run_crawl(_watch(site), store_url=db_url, matcher=bank_matcher({1: protected}),
                      allow_private=True)
    assert stats.pages == 2
    assert stats.images_hashed == 2
    assert site.count("/a.jpg") == 1  # fetched once although two pages show it
    with open_store(db_url) as store:
        rows = list_sightings(store)
    assert {(r.page_url, r.image_url) for r in rows} == {(site.url("/"), site.url("/a.jpg")),
                                                         (site.url("/p2"), site.url("/a.jpg"))}
    assert all(r.status == "online" and r.times_seen == 1 and r.distance == 0 for r in rows)
    assert {r.page_title for r in rows} == {"Gallery", "Page 2"}
