"""End-to-end crawls with real Scrapy against pages served on 127.0.0.1."""

from __future__ import annotations

import hashlib
from typing import Any

from childguard.crawl.runner import run_crawl
from childguard.crawl.sightings import list_sightings
from childguard.crawl.watch import Watch
from childguard.store.db import open_store


def _watch(site: Any, **kw: Any) -> Watch:
    return Watch(name="t", seeds=(site.url("/"),), download_delay=0, **kw)


def test_crawl_finds_reposts_and_records_sightings(
    site: Any, db_url: str, make_photo: Any, bank_matcher: Any
) -> None:
    protected = make_photo(1)
    other = make_photo(2)
    site.page(
        "/",
        '<html><title>Gallery</title><body><img src="/a.jpg"><a href="/p2">next</a></body></html>',
    )
    site.page(
        "/p2",
        '<html><title>Page 2</title><body><div style="background-image:url(b.jpg)"></div>'
        '<img data-src="/a.jpg"></body></html>',
    )
    site.image("/a.jpg", protected)
    site.image("/b.jpg", other)
    stats = run_crawl(
        _watch(site), store_url=db_url, matcher=bank_matcher({1: protected}), allow_private=True
    )
    assert stats.pages == 2
    assert stats.images_hashed == 2
    assert site.count("/a.jpg") == 1  # fetched once although two pages show it
    with open_store(db_url) as store:
        rows = list_sightings(store)
    assert {(r.page_url, r.image_url) for r in rows} == {
        (site.url("/"), site.url("/a.jpg")),
        (site.url("/p2"), site.url("/a.jpg")),
    }
    assert all(r.status == "online" and r.times_seen == 1 and r.distance == 0 for r in rows)
    assert {r.page_title for r in rows} == {"Gallery", "Page 2"}


def test_recrawl_is_idempotent_and_conditional_requests_skip_rehash(
    site: Any, db_url: str, make_photo: Any, bank_matcher: Any
) -> None:
    protected = make_photo(11)
    site.page("/", '<img src="/a.jpg"><img src="/b.jpg">')
    site.image("/a.jpg", protected, etag=True)
    site.image("/b.jpg", make_photo(12), etag=True)
    matcher = bank_matcher({1: protected})
    first = run_crawl(
        _watch(site), store_url=db_url, matcher=matcher, allow_private=True, hash_workers=0
    )
    assert first.images_hashed == 2 and first.new_sightings == 1
    second = run_crawl(
        _watch(site), store_url=db_url, matcher=matcher, allow_private=True, hash_workers=0
    )
    assert site.requests_to("/a.jpg")[-1].get("If-None-Match")  # a conditional request was sent
    assert second.images_not_modified == 2  # 304 -> stored hashes reused
    assert second.images_hashed == 0
    assert second.new_sightings == 0
    with open_store(db_url) as store:
        rows = list_sightings(store)
    assert len(rows) == 1  # no duplicate row
    assert rows[0].times_seen == 2 and rows[0].status == "online"
    assert rows[0].last_seen > rows[0].first_seen


def test_same_bytes_under_new_url_are_not_rehashed(site: Any, db_url: str, make_photo: Any) -> None:
    data = make_photo(13)
    site.page("/", '<img src="/one.jpg">')
    site.image("/one.jpg", data)
    run_crawl(_watch(site), store_url=db_url, allow_private=True, hash_workers=0)
    site.page("/", '<img src="/two.jpg">')
    site.image("/two.jpg", data)
    stats = run_crawl(_watch(site), store_url=db_url, allow_private=True, hash_workers=0)
    assert stats.images_cached == 1 and stats.images_hashed == 0


def test_removed_reposts_are_marked_removed(
    site: Any, db_url: str, make_photo: Any, bank_matcher: Any
) -> None:
    p1, p2, p3 = make_photo(21), make_photo(22), make_photo(23)
    site.page("/", '<a href="/g1">1</a><a href="/g2">2</a><a href="/g3">3</a>')
    site.page("/g1", '<img src="/p1.jpg">')
    site.page("/g2", '<img src="/p2.jpg">')
    site.page("/g3", '<img src="/p3.jpg">')
    for path, data in (("/p1.jpg", p1), ("/p2.jpg", p2), ("/p3.jpg", p3)):
        site.image(path, data)
    matcher = bank_matcher({1: p1, 2: p2, 3: p3})
    first = run_crawl(
        _watch(site), store_url=db_url, matcher=matcher, allow_private=True, hash_workers=0
    )
    assert first.new_sightings == 3
    site.page("/g1", "<p>This photo was removed</p>")  # image gone from its page
    del site.routes["/g2"]  # the page is gone (404)
    second = run_crawl(
        _watch(site), store_url=db_url, matcher=matcher, allow_private=True, hash_workers=0
    )
    assert second.sightings_removed == 2
    with open_store(db_url) as store:
        by_image = {r.image_url.rsplit("/", 1)[1]: r for r in list_sightings(store)}
    assert by_image["p1.jpg"].status == "removed" and by_image["p1.jpg"].removed_at is not None
    assert by_image["p2.jpg"].status == "removed"
    assert by_image["p3.jpg"].status == "online" and by_image["p3.jpg"].times_seen == 2


def test_bad_pages_and_images_are_logged_not_fatal(site: Any, db_url: str, make_photo: Any) -> None:
    site.page(
        "/",
        """<html><body><img src="/slow.jpg"><img src="/huge.jpg"><img src="/notimg.jpg">
        <img src="/ok.jpg"><a href="/loop">loop</a><a href="/big">big</a><a href="/broken">b</a>
        <a href="/cal/2024/01">calendar</a><a href="/a/a/a/a/x">deep loop</a></body>""",
    )
    site.image("/slow.jpg", make_photo(31), delay=3.0)
    site.image("/huge.jpg", make_photo(32, size=(1600, 1200)))
    site.page("/notimg.jpg", "<html>surprise, a page</html>")
    site.image("/ok.jpg", make_photo(33))
    site.routes["/loop"] = type(site.routes["/"])(b"", 302, "text/html", {"Location": "/loop2"})
    site.routes["/loop2"] = type(site.routes["/"])(b"", 302, "text/html", {"Location": "/loop"})
    site.page("/big", "<html>" + "x" * 300_000 + "</html>")
    site.page("/broken", "<html><body><img src='/ok.jpg'<<<div></p></table>\x00")
    for month in range(1, 13):
        nxt = f"/cal/2024/{month + 1:02d}"
        site.page(f"/cal/2024/{month:02d}", f'<a href="{nxt}">next month</a>')
    stats = run_crawl(
        Watch(
            name="bad",
            seeds=(site.url("/"),),
            download_delay=0,
            max_depth=20,
            max_pages_per_pattern=4,
        ),
        store_url=db_url,
        allow_private=True,
        hash_workers=0,
        settings_overrides={
            "DOWNLOAD_TIMEOUT": 1,
            "RETRY_TIMES": 0,
            "DOWNLOAD_MAXSIZE": 100_000,
            "DOWNLOAD_WARNSIZE": 50_000,
        },
    )
    assert stats.finish_reason == "finished"
    assert (
        stats.images_hashed == 1
    )  # only /ok.jpg: slow timed out, huge over the limit, notimg refused
    assert stats.scrapy.get("childguard/images_not_an_image") == 1
    assert stats.images_failed >= 2
    assert stats.scrapy.get("childguard/pages_pattern_refused", 0) >= 1  # calendar cut at 4 pages
    assert site.count("/cal/2024/06") == 0
    assert site.count("/a/a/a/a/x") == 0  # repeated-segment loop never fetched
    assert site.count("/loop") <= 6  # redirect loop gave up


def test_a_stage_that_raises_fails_the_crawl_and_keeps_what_was_recorded(
    site: Any, db_url: str, make_photo: Any, bank_matcher: Any
) -> None:
    """A stage that raises (here the matcher, on one image) loses that image's matches; the
    crawl goes on, counts it as a stage error, and ends failed (exit 1 in `crawl run`) saying
    why, instead of finished."""
    protected, broken = make_photo(21), make_photo(22)
    site.page("/", '<html><title>G</title><body><img src="/a.jpg"><img src="/b.jpg"></body></html>')
    site.image("/a.jpg", protected)
    site.image("/b.jpg", broken)
    matches = bank_matcher({1: protected})
    broken_md5 = hashlib.md5(broken).hexdigest()

    def matcher(record: Any) -> Any:
        if record.value("md5") == broken_md5:
            raise RuntimeError("the bank went away")
        return matches(record)

    stats = run_crawl(
        _watch(site), store_url=db_url, matcher=matcher, allow_private=True, hash_workers=0
    )
    assert stats.stage_errors == 1
    assert stats.problem() is not None
    assert "matcher on" in stats.problem() and "the bank went away" in stats.problem()
    with open_store(db_url) as store:
        rows = list_sightings(store)
    assert [r.image_url for r in rows] == [site.url("/a.jpg")]  # the other image's sighting stays
    clean = run_crawl(
        _watch(site), store_url=db_url, matcher=matches, allow_private=True, hash_workers=0
    )
    assert clean.stage_errors == 0 and clean.problem() is None


def test_warm_up_migrates_a_store_before_its_first_crawl(site: Any, db_url: str) -> None:
    """`warm_up(store_url=...)` makes and migrates the store now, and the first crawl into it
    then runs without migrating it again."""
    from childguard.crawl import runner

    assert db_url not in runner._MIGRATED
    runner.warm_up(store_url=db_url)
    assert db_url in runner._MIGRATED
    with open_store(db_url, migrate=False, create=False) as store:  # refused if not made
        assert list_sightings(store) == []
    site.page("/", "<html><title>empty</title></html>")
    stats = run_crawl(_watch(site), store_url=db_url, allow_private=True, hash_workers=0)
    assert stats.pages == 1 and stats.problem() is None
