"""The page limit is spent in priority order: on a generated site with endless calendars and
session-id traps linked from every page, every image page is fetched before the first calendar
or trap page, and the limit is never exceeded. Plus the link classifier on its own."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.crawl_site import LargeSite, serve_in_process  # noqa: E402

from childguard.crawl.priority import LinkKind, LinkRanker, classify  # noqa: E402
from childguard.crawl.runner import run_crawl  # noqa: E402
from childguard.crawl.watch import Watch  # noqa: E402


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://s.example/photo/2024", LinkKind.IMAGE),
        ("https://s.example/gallery/2024/05", LinkKind.IMAGE),
        ("https://s.example/list?page=3", LinkKind.PAGINATION),
        ("https://s.example/blog/page/2", LinkKind.PAGINATION),
        ("https://s.example/calendar/2026/01/03", LinkKind.CALENDAR),
        ("https://s.example/2024/05", LinkKind.CALENDAR),
        ("https://s.example/events?month=4", LinkKind.CALENDAR),
        ("https://s.example/2024/05/a-post-with-photos", LinkKind.OTHER),
        ("https://s.example/browse?sid=abc&p=3", LinkKind.TRAP),
        ("https://s.example/x?ref=0123456789abcdef0123", LinkKind.TRAP),
        ("https://s.example/tag/a/tag/b", LinkKind.TRAP),
        ("https://s.example/about", LinkKind.OTHER),
    ],
)
def test_classify(url: str, kind: LinkKind) -> None:
    assert classify(url) is kind


def test_ranker_learns_the_shapes_of_pages_that_showed_images() -> None:
    ranker = LinkRanker()
    assert ranker.kind("https://s.example/v/17") is LinkKind.OTHER
    ranker.saw_images("https://s.example/v/3")
    assert ranker.kind("https://s.example/v/17") is LinkKind.IMAGE
    assert ranker.kind("https://s.example/v/17/comments") is LinkKind.OTHER
    # priorities never cross kinds, whatever the depth
    deep_image = ranker.priority(LinkKind.IMAGE, 50)
    assert deep_image > ranker.priority(LinkKind.PAGINATION, 0)
    assert ranker.priority(LinkKind.PAGINATION, 50) > ranker.priority(LinkKind.OTHER, 0)


def _kind_of(path: str) -> str:
    if path.startswith("/calendar/"):
        return "calendar"
    if path.startswith("/browse"):
        return "trap"
    if path.startswith("/photo/"):
        return "image-page"
    if path.startswith("/img/"):
        return "image"
    return "listing"


def test_every_image_page_before_any_calendar_or_trap(
    tmp_path: Path, sqlite_template: Path
) -> None:
    site = LargeSite(listings=6, per_listing=12)  # 79 useful pages, endless calendars and traps
    log = tmp_path / "requests.log"
    db = tmp_path / "crawl.db"
    shutil.copy(sqlite_template, db)
    limit = len(site.useful_pages()) + 25
    with serve_in_process(site, log_path=log) as server:
        watch = Watch(
            name="priority",
            seeds=(server.base + "/",),
            max_depth=50,
            max_pages=limit,
            download_delay=0,
            concurrency_per_domain=4,
            obey_robots=False,
            robots_override_reason="generated test site on loopback",
        )
        stats: Any = run_crawl(
            watch,
            store_url=f"sqlite:///{db}",
            allow_private=True,
            hash_workers=1,
            robust=False,
            timeout_s=120,
        )
    order = [line for line in log.read_text().splitlines() if line != "/robots.txt"]
    pages = [p for p in order if _kind_of(p) != "image"]
    kinds = [_kind_of(p) for p in pages]
    assert stats.pages == limit == len(pages)  # the whole limit spent, and not one page more
    assert set(pages) >= site.useful_pages()  # every listing and image page fetched
    first_held = next(i for i, k in enumerate(kinds) if k in ("calendar", "trap"))
    assert set(pages[:first_held]) == site.useful_pages()  # ... all before any calendar or trap
    assert kinds[first_held] == "calendar"  # calendars before traps
    assert stats.images == site.photos and stats.images_failed == 0
    held = (
        stats.scrapy["childguard/pages_held_calendar"] + stats.scrapy["childguard/pages_held_trap"]
    )
    assert held > limit - len(site.useful_pages())  # more were waiting than the limit left room for
