"""Every way a page can show an image, and the page links the spider follows."""

from __future__ import annotations

import pytest

from childguard.crawl.extract import parse_count, read_counters
from childguard.crawl.watch import SiteProfile
from childguard.netguard.links import extract_page, largest_srcset_candidate

BASE = "https://pics.example/gallery/page1.html"


def urls(html: str, url: str = BASE) -> list[str]:
    return extract_page(html, url).image_urls


@pytest.mark.parametrize(
    ("html", "expected", "how"),
    [
        ('<img src="a.jpg">', "https://pics.example/gallery/a.jpg", "img"),
        ('<img src="/abs/a.jpg">', "https://pics.example/abs/a.jpg", "img"),
        ('<img src="//cdn.example/x.png">', "https://cdn.example/x.png", "img"),
        (
            '<img data-src="lazy.jpg" src="data:image/gif;base64,R0lGOD">',
            "https://pics.example/gallery/lazy.jpg",
            "lazy",
        ),
        ('<img data-original="o.jpg">', "https://pics.example/gallery/o.jpg", "lazy"),
        ('<img data-lazy-src="l.webp">', "https://pics.example/gallery/l.webp", "lazy"),
        ('<a href="full/1.JPG">thumb</a>', "https://pics.example/gallery/full/1.JPG", "a-href"),
        (
            '<meta property="og:image" content="https://pics.example/og.jpg">',
            "https://pics.example/og.jpg",
            "og:image",
        ),
        (
            '<picture><source srcset="p-400.webp 400w, p-1200.webp 1200w">'
            '<img src="p.jpg"></picture>',
            "https://pics.example/gallery/p-1200.webp",
            "picture",
        ),
        (
            "<div style=\"background-image: url('bg.jpg')\"></div>",
            "https://pics.example/gallery/bg.jpg",
            "css",
        ),
        (
            '<style>.hero { background: #000 url("/hero.png") no-repeat; }</style>',
            "https://pics.example/hero.png",
            "css",
        ),
    ],
)
def test_each_way_an_image_is_shown(html: str, expected: str, how: str) -> None:
    page = extract_page(f"<html><body>{html}</body></html>", BASE)
    assert expected in page.image_urls
    assert any(ref.url == expected and ref.how == how for ref in page.images)


def test_srcset_picks_largest_candidate() -> None:
    assert largest_srcset_candidate("s.jpg 320w, m.jpg 800w, l.jpg 1600w") == "l.jpg"
    assert largest_srcset_candidate("a.jpg, b.jpg 2x, c.jpg 1.5x") == "b.jpg"
    assert largest_srcset_candidate("a.jpg 1x, b.jpg 640w") == "b.jpg"  # w beats x
    assert (
        largest_srcset_candidate("https://c.example/i.jpg?w=1,2 500w, /big.jpg 900w") == "/big.jpg"
    )
    assert largest_srcset_candidate("") is None
    page = extract_page('<img srcset="t.jpg 100w, big.jpg 2000w" src="t.jpg">', BASE)
    assert page.images[0].url == "https://pics.example/gallery/big.jpg"


def test_base_href_and_relative_resolution() -> None:
    html = (
        '<html><head><base href="https://static.example/img/"></head>'
        '<body><img src="x.jpg"></body></html>'
    )
    assert urls(html) == ["https://static.example/img/x.jpg"]


def test_pagination_and_gallery_links_are_pages_not_images() -> None:
    html = """<a href="?page=2">2</a><a href="/album/7#top">album</a><a href="mailto:x@y">m</a>
    <a href="javascript:void(0)">j</a><link rel="next" href="page2.html"><a href="full.png">f</a>"""
    page = extract_page(html, BASE)
    assert page.links == [
        "https://pics.example/gallery/page1.html?page=2",
        "https://pics.example/album/7",
        "https://pics.example/gallery/page2.html",
    ]
    assert page.image_urls == ["https://pics.example/gallery/full.png"]


def test_duplicates_and_non_http_are_dropped() -> None:
    html = '<img src="a.jpg"><img data-src="a.jpg"><img src="data:image/png;base64,AAAA"><img src="ftp://x/y.jpg">'
    assert urls(html) == ["https://pics.example/gallery/a.jpg"]


@pytest.mark.parametrize(
    "html",
    [
        "",
        "<html><body><img src='a.jpg'",
        "<<<>>>\x00\xff garbage <img src=b.png>",
        "<img src='http://[::1'>",
    ],
)
def test_broken_html_never_raises(html: str) -> None:
    page = extract_page(html, BASE)
    assert isinstance(page.image_urls, list)


def test_title_is_normalised() -> None:
    assert extract_page("<title>  Camp\n 2024  </title>", BASE).title == "Camp 2024"


def test_counts_and_site_profile() -> None:
    assert parse_count("1,234 views") == 1234
    assert parse_count("16M") == 16_000_000
    assert parse_count("2.5k") == 2500
    assert parse_count("no number") is None
    html = """<div class="stats"><span class="views">200,000 views</span>
    <span class="c">17 comments</span></div>
    <div class="photo"><img src="p1.jpg"><span class="v">300</span></div>
    <div class="photo"><img src="p2.jpg"><span class="v">16M</span></div>"""
    profile = SiteProfile(views=".views", comments=".c", item=".photo", item_views=".v")
    counters = read_counters(html, BASE, profile)
    assert counters.views == 200_000
    assert counters.comments == 17
    assert counters.per_image_views == {
        "https://pics.example/gallery/p1.jpg": 300,
        "https://pics.example/gallery/p2.jpg": 16_000_000,
    }
    assert read_counters(html, BASE, SiteProfile(views="::bad(")).views is None


_REFERENCES = [
    "/img/1.jpg", "/img/1.jpg?x=1", "/a/./b.jpg", "/a/../b.png", "/.", "/..", "/a/..", "/a/.?q",
    "//cdn.example/x.jpg", "img/2.jpg", "../up.jpg", "?q=1", "#frag", "/p#f", "/sp ace.jpg",
    "/été.jpg", "javascript:alert(1)", "http://other.example/z.gif", "/a;p=1/b.jpg", "/a?",
    "/a?b?c", "/q?x=/../y", " /pad.jpg ", "/%41%2e.jpg", "/a/b/", "/", "", "/a\tb.jpg",
    "/[x].jpg", "http://[bad/x.jpg", "/a~b!$&'()*+,=:@.jpg", "HTTP://UP.example/A.JPG",
]  # fmt: skip
_BASES = [
    "http://127.0.0.1:8000/g/1.html",
    "https://Site.example/a/b/c.html?x=1#f",
    "http://user:pw@h.example:81/d/",
    "http://[::1]:8080/x/y",
]


@pytest.mark.parametrize("base", _BASES)
def test_the_short_road_for_path_references_resolves_as_urljoin_does(base: str) -> None:
    """Path-absolute references on a page are joined to its scheme and host directly; every
    reference resolves to what `http_url` (urljoin, fragments dropped, http(s) only) gives."""
    from childguard.netguard.links import _Resolver, http_url

    resolve = _Resolver(base)
    for raw in _REFERENCES:
        assert resolve(raw) == http_url(base, raw), raw
        assert resolve(raw) == http_url(base, raw), raw  # and again, from its memo
