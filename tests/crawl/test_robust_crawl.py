"""Crawls with robust hashing (real Scrapy, pages on 127.0.0.1, real store, real photos): an
off-centre crop and a mirrored re-post of registered photos are found only thanks to the robust
views and feature verification; a plain crawl misses them; re-crawls answered `304` keep
finding them (the views and features live in the content cache), and content cached by a plain
crawl is fetched again once to get them."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from childguard.crawl.matching import StoreMatcher
from childguard.crawl.runner import run_crawl
from childguard.crawl.sightings import list_sightings
from childguard.crawl.watch import Watch
from childguard.protect.organisations import create_organisation
from childguard.protect.register import register_photos
from childguard.store.db import open_store

REGISTERED = ("Bridge", "TwoWings")
UNRELATED = "Dune"


def jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=85)
    return buf.getvalue()


@pytest.fixture
def reposts(
    real_photos: list[Path], tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, bytes]:
    """Registers two photos for an organisation; returns the re-posts a site will serve."""
    monkeypatch.setenv("CHILDGUARD_HOME", str(tmp_path / "home"))
    by_stem = {p.stem.split("_by_")[0]: p for p in real_photos}
    album = tmp_path / "album"
    album.mkdir()
    photos = {}
    for stem in (*REGISTERED, UNRELATED):
        im = Image.open(by_stem[stem]).convert("RGB")
        im.thumbnail((1024, 1024))
        photos[stem] = im
    for stem in REGISTERED:
        photos[stem].save(album / f"{stem}.jpg", quality=90)
    store = open_store(store_url)
    try:
        with store.session() as s:
            org = create_organisation(s, "Scouts Example")
            assert len(register_photos(s, album, org).registered) == 2
    finally:
        store.close()
    bridge, wings = photos["Bridge"], photos["TwoWings"]
    w, h = bridge.size
    return {
        "/crop.jpg": jpeg(bridge.crop((int(0.3 * w), int(0.25 * h), w, h))),
        "/mirror.jpg": jpeg(ImageOps.mirror(wings)),
        "/other.jpg": jpeg(photos[UNRELATED]),
    }


def _crawl(site: Any, store_url: str, **kw: Any) -> Any:
    watch = Watch(name="reposts", seeds=(site.url("/"),), download_delay=0)
    return run_crawl(
        watch,
        store_url=store_url,
        matcher=StoreMatcher(store_url),
        allow_private=True,
        hash_workers=0,
        **kw,
    )


def _found(store_url: str) -> dict[str, tuple[str, str | None, str]]:
    store = open_store(store_url)
    try:
        return {
            v.image_url.rsplit("/", 1)[1]: (v.status, v.organisation, str(v.bank_kind))
            for v in list_sightings(store)
        }
    finally:
        store.close()


def test_reposts_found_only_with_robust_hashing(
    site: Any, store_url: str, reposts: dict[str, bytes]
) -> None:
    site.page("/", "".join(f'<img src="{path}">' for path in reposts))
    for path, data in reposts.items():
        site.image(path, data, etag=path != "/other.jpg")  # /other.jpg: no validators

    # Plain PDQ (as `childguard hash`): the crop and the mirror are missed.
    plain = _crawl(site, store_url, robust=False)
    assert plain.images_hashed == 3 and plain.images_matched == 0
    assert _found(store_url) == {}

    # Robust: the same bytes, cached without views by the plain crawl, are hashed again with
    # views and features; for the two answered 304, the bytes are fetched once more.
    robust = _crawl(site, store_url)
    assert robust.images_not_modified == 2 and robust.images_hashed == 1
    assert robust.scrapy.get("childguard/images_rehashed_robust") == 3
    assert robust.images_matched == 2 and robust.new_sightings == 2
    found = _found(store_url)
    assert set(found) == {"crop.jpg", "mirror.jpg"}
    assert all(v == ("online", "Scouts Example", "protected") for v in found.values())

    # Re-crawl: 304s and cached content, nothing hashed again, the sightings stay online.
    again = _crawl(site, store_url)
    assert again.images_not_modified == 2 and again.images_cached == 1
    assert again.images_hashed == 0
    assert "childguard/images_rehashed_robust" not in again.scrapy
    assert again.images_matched == 2 and again.sightings_changed == 0
    assert _found(store_url) == found
