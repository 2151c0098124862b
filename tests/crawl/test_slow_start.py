"""A crawl whose hash workers fetch the images starts with a few pages in flight and doubles
that with every page answered (`childguard.crawl.spider.START_PAGES`), checked from the real
test site's own request log."""

from __future__ import annotations

from typing import Any

from childguard.crawl.runner import run_crawl
from childguard.crawl.spider import START_PAGES
from childguard.crawl.watch import Watch


def test_pages_in_flight_start_few_and_double_with_each_answer(
    site: Any, db_url: str, make_photo: Any
) -> None:
    pages = 24
    site.page("/", "".join(f'<a href="/p{i}">{i}</a>' for i in range(pages)))
    for i in range(pages):
        site.page(f"/p{i}", f'<img src="/i{i}.jpg">', delay=0.6)
        site.image(f"/i{i}.jpg", make_photo(60 + i))
    watch = Watch(
        name="slow-start", seeds=(site.url("/"),), download_delay=0, concurrency_per_domain=32
    )
    stats = run_crawl(
        watch,
        store_url=db_url,
        allow_private=True,
        hash_workers=1,
        settings_overrides={"CONCURRENT_REQUESTS": 32},
    )
    assert stats.pages == pages + 1 and stats.images_hashed == pages
    starts = sorted(t for path, t in site.times if path.startswith("/p"))
    assert len(starts) == pages
    first = starts[0]
    early = [t for t in starts if t < first + 0.3]  # before any of them was answered
    assert len(early) == 2 * START_PAGES  # the seed's answer doubled the cap once
    # Once those answer, the cap doubles past what is left: every other page starts in one
    # second wave (a cap that stayed where it began would need a third, 0.6 s later).
    assert all(t < first + 0.6 + 0.45 for t in starts[len(early) :])
