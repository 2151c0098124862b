"""The spider fetches videos as media and hands them on to the pipelines as it does images."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from childguard.crawl.runner import run_crawl
from childguard.crawl.watch import Watch


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if shutil.which("ffmpeg") is None:
        pytest.fail("ffmpeg is not installed (make installs Debian's ffmpeg)", pytrace=False)
    out = Path(tmp_path_factory.mktemp("clip")) / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi",
         "-i", "testsrc=s=64x48:r=5:d=2", "-c:v", "libx264", "-preset", "ultrafast", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out.read_bytes()


def test_spider_fetches_videos_as_media(site: Any, db_url: str, clip: bytes) -> None:
    route = type(site.routes["/robots.txt"])
    site.page(
        "/",
        '<html><head><meta property="og:video" content="/og.mp4"></head><body>'
        '<video src="/a.mp4"></video><video><source src="/b.webm"></video></body></html>',
    )
    for path in ("/a.mp4", "/b.webm", "/og.mp4"):
        site.routes[path] = route(clip, 200, "video/mp4")
    stats = run_crawl(
        Watch(name="v", seeds=(site.url("/"),), download_delay=0),
        store_url=db_url,
        allow_private=True,
        hash_workers=0,
    )
    for path in ("/a.mp4", "/b.webm", "/og.mp4"):
        assert site.count(path) == 1, path
    # Handed on to the pipelines (not refused as "not an image"), the same way images are.
    assert stats.scrapy.get("childguard/images_not_an_image", 0) == 0
    assert stats.image_bytes == 3 * len(clip)


def test_crawl_finds_a_reposted_protected_video(site: Any, db_url: str, tmp_path: Path) -> None:
    """An organisation registers a video; a site re-posts it resized; the crawl records a
    sighting through the same pipeline stages as for photos, matched by vPDQ."""
    import sys

    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from bench.video_corpus import Corpus, demo_photos

    from childguard.crawl.matching import StoreMatcher
    from childguard.crawl.sightings import list_sightings
    from childguard.protect.organisations import create_organisation
    from childguard.protect.register import register_photos
    from childguard.store.db import open_store

    corpus = Corpus(tmp_path / "videos")
    original = corpus.slideshow(demo_photos()[:3])
    with open_store(db_url) as store, store.session() as s:
        org = create_organisation(s, "Scouts")
        assert len(register_photos(s, original, org).registered) == 1
    site.page("/", '<html><body><video><source src="/repost.mp4"></video></body></html>')
    route = type(site.routes["/robots.txt"])
    site.routes["/repost.mp4"] = route(
        corpus.variant(original, "resized").read_bytes(), 200, "video/mp4"
    )
    stats = run_crawl(
        Watch(name="v", seeds=(site.url("/"),), download_delay=0),
        store_url=db_url,
        matcher=StoreMatcher(db_url),
        allow_private=True,
        hash_workers=0,
    )
    assert stats.new_sightings == 1
    with open_store(db_url) as store:
        (sighting,) = list_sightings(store)
    assert sighting.signal_type == "vpdq" and sighting.organisation == "Scouts"
    assert sighting.image_url == site.url("/repost.mp4")


def test_video_urls_have_a_download_cap_of_their_own(
    site: Any, db_url: str, clip: bytes, make_photo: Any
) -> None:
    photo = make_photo(8)
    cap = min(len(clip), len(photo)) - 1  # under both files: an image this big is cut off
    route = type(site.routes["/robots.txt"])
    site.page("/", '<html><body><video src="/a.mp4"></video><img src="/big.jpg"></body></html>')
    site.routes["/a.mp4"] = route(clip, 200, "video/mp4")
    site.image("/big.jpg", photo)
    stats = run_crawl(
        Watch(name="cap", seeds=(site.url("/"),), download_delay=0),
        store_url=db_url,
        allow_private=True,
        hash_workers=0,
        settings_overrides={"DOWNLOAD_MAXSIZE": cap, "DOWNLOAD_WARNSIZE": 0},
    )
    assert stats.images_hashed == 1  # the video; the image was refused at the cap
    assert stats.image_bytes == len(clip)
