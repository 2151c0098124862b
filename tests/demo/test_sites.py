"""The demo's two sites, served for real on 127.0.0.1: what the crawler will see, and removal."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from childguard.crawl.extract import read_counters
from childguard.demo import ASSETS
from childguard.demo.sites import AlbumSite, SharingSite, serving
from childguard.demo.story import ALBUM_PROFILE
from childguard.netguard.links import extract_page


@pytest.fixture
def sites(tmp_path: Path) -> tuple[AlbumSite, SharingSite]:
    album = AlbumSite.build(tmp_path / "album", sorted(ASSETS.glob("*.jpg"))[:3], title="Camp")
    share = SharingSite.build(tmp_path / "share", album.photos, reposts=2, synthetic=14)
    return album, share


def test_sharing_site_pages_show_lazy_thumbnails_pagination_and_full_images(
    sites: tuple[AlbumSite, SharingSite],
) -> None:
    album, share = sites
    assert len(share.posts) == 16 and len(share.reposts) == 2
    with serving(album, share), httpx.Client() as http:
        base = f"http://127.0.0.1:{share.served.port}" if share.served else ""
        home = extract_page(http.get(base + "/").text, base + "/")
        galleries = [u for u in home.links if "/g/" in u]
        assert len(galleries) == 3
        first = http.get(galleries[0])
        page = extract_page(first.text, galleries[0])
        assert {ref.how for ref in page.images} == {"lazy"}  # data-src thumbnails only
        assert all("/t/" in u for u in page.image_urls)
        post_links = [u for u in page.links if "/p/" in u]
        assert len(post_links) == len(page.image_urls) == 6  # 16 posts over 3 galleries
        photo = extract_page(http.get(post_links[0]).text, post_links[0])
        assert {ref.how for ref in photo.images} == {"img"} and len(photo.image_urls) == 1
        assert "og:image" in http.get(post_links[0]).text
        full = http.get(photo.image_urls[0])
        assert full.status_code == 200 and full.content[:2] == b"\xff\xd8"


def test_pagination_links_to_the_next_page(tmp_path: Path) -> None:
    album = AlbumSite.build(tmp_path / "album", sorted(ASSETS.glob("*.jpg"))[:2], title="Camp")
    share = SharingSite.build(
        tmp_path / "share", album.photos, reposts=1, synthetic=27, galleries=1
    )
    assert len(share.posts) == 28
    html = (tmp_path / "share" / "g" / "g1" / "index.html").read_text()
    page = extract_page(html, "http://pics.share.test/g/g1/")
    assert "http://pics.share.test/g/g1/page/2/" in page.links
    assert len(page.image_urls) == 12
    assert (tmp_path / "share" / "g" / "g1" / "page" / "3" / "index.html").exists()
    assert not (tmp_path / "share" / "g" / "g1" / "page" / "4").exists()


def test_removed_posts_answer_404_and_leave_a_placeholder(
    sites: tuple[AlbumSite, SharingSite],
) -> None:
    album, share = sites
    gone = share.reposts[0]
    share.remove([gone.id])
    with serving(album, share), httpx.Client() as http:
        base = f"http://127.0.0.1:{share.served.port}" if share.served else ""
        for path in (f"/p/{gone.id}/", f"/i/{gone.id}.jpg", f"/t/{gone.id}.jpg"):
            assert http.get(base + path).status_code == 404, path
        kept = share.reposts[1]
        assert http.get(f"{base}/p/{kept.id}/").status_code == 200
        galleries = "".join(http.get(f"{base}/g/{g}/").text for g in share.galleries)
    assert f"/t/{gone.id}.jpg" not in galleries and "This photo was removed." in galleries
    assert f"/t/{kept.id}.jpg" in galleries


def test_album_counters_are_read_by_the_demo_site_profile(
    sites: tuple[AlbumSite, SharingSite],
) -> None:
    album, _ = sites
    album.add_views({album.photos[1].file_name: 180_000})
    html = (album.root / "index.html").read_text()
    counters = read_counters(html, "http://album.scouts.test/", ALBUM_PROFILE)
    expected = {f"http://album.scouts.test/photos/{p.file_name}": p.views for p in album.photos}
    assert counters.per_image_views == expected
    assert (
        counters.per_image_views[f"http://album.scouts.test/photos/{album.photos[1].file_name}"]
        >= 180_000
    )
