"""Compact query features survive the JSON round trip of the crawl's content cache whole: ORB
features, check image, focus copy, mirror and regions, so restored features verify a
screenshot, a flipped copy and a photo in a gutterless grid exactly as fresh ones do; unreadable
or old layouts are refused with a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps
from tests.robust.conftest import synthetic_photo
from tests.robust.grids import make_grid

from childguard.crawl.hashing import extras_from_json, extras_json, has_extras
from childguard.pipeline import compact_features, hash_file
from childguard.robust.features_codec import (
    FeaturesCodecError,
    features_from_json,
    features_to_json,
)
from childguard.robust.protected import ProtectedIndex
from childguard.robust.query import query_hashes
from childguard.robust.query_features import FOCUS_SIDE, QueryFeatures
from childguard.robust.signature import compute_signature
from childguard.signals.content import ContentSignals

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq" / "images"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(CONF / "dih_bridge-1-original.jpg").convert("RGB").resize((640, 402))


def _screenshot(photo: Image.Image, width: int | None = None) -> Image.Image:
    """A page of text with the photo posted on it, `width` px wide (its own by default)."""
    page = Image.new("RGB", (1280, 1000), (250, 250, 250))
    draw = ImageDraw.Draw(page)
    for y in range(40, 300, 24):
        draw.text((60, y), "a page with some text around a posted photo", fill=(20, 20, 20))
    if width is not None:
        photo = photo.resize((width, round(width * photo.height / photo.width)))
    page.paste(photo, (320, 420))
    return page


def _features(im: Image.Image, tmp_path: Path, name: str) -> QueryFeatures:
    path = tmp_path / name
    im.save(path, quality=90)
    features = hash_file(path, robust=True, features=True).features
    assert features is not None
    return features


def _same_part(a: QueryFeatures, b: QueryFeatures) -> None:
    np.testing.assert_array_equal(a.keypoints, b.keypoints)
    np.testing.assert_array_equal(a.descriptors, b.descriptors)
    assert (a.check is None) == (b.check is None)
    if a.check is not None and b.check is not None:
        np.testing.assert_array_equal(a.check.grey, b.check.grey)  # lossless
        assert a.check.scale == b.check.scale


def _hits(index: ProtectedIndex, q: QueryFeatures) -> list[tuple[Any, ...]]:
    return [(h.photo, h.inliers, h.aligned, h.match) for h in index.search(q)]


def test_round_trip_keeps_every_part(photo: Image.Image, tmp_path: Path) -> None:
    fresh = _features(_screenshot(photo), tmp_path, "shot.jpg")
    stored = json.loads(json.dumps(features_to_json(fresh)))
    assert stored["mirror"]["check"] == "flip"  # not stored twice
    restored = features_from_json(stored, fresh.hashes)
    assert restored.hashes == fresh.hashes
    _same_part(fresh, restored)
    assert fresh.check is not None
    fresh_mirror, restored_mirror = fresh.mirrored(), restored.mirrored()
    assert fresh_mirror is not None and restored_mirror is not None
    _same_part(fresh_mirror, restored_mirror)
    assert fresh.regions(), "the pasted photo should be found as a region"
    assert len(restored.regions()) == len(fresh.regions())
    for a, b in zip(fresh.regions(), restored.regions(), strict=True):
        _same_part(a, b)
    focus, back = fresh.focus_copy(), restored.focus_copy()
    assert focus is not None and back is not None
    np.testing.assert_array_equal(focus.grey, back.grey)  # lossless
    assert focus.scale == back.scale


def test_a_large_querys_focus_copy_round_trips_at_focus_side(tmp_path: Path) -> None:
    """A query over FOCUS_SIDE (a PNG, which no DCT scaling shrinks on decoding): its copy is
    shrunk to FOCUS_SIDE and its scale, from the 768-px work image to the copy, is over 1;
    both come back as they were."""
    big = Image.fromarray(synthetic_photo(41, (640, 480))).resize((2000, 1500))
    fresh = _features(big, tmp_path, "big.png")
    restored = features_from_json(json.loads(json.dumps(features_to_json(fresh))), [])
    focus, back = fresh.focus_copy(), restored.focus_copy()
    assert focus is not None and back is not None
    assert max(back.grey.shape) == FOCUS_SIDE and back.scale > 1
    np.testing.assert_array_equal(focus.grey, back.grey)
    assert focus.scale == back.scale


def test_restored_features_find_a_photo_in_a_grid_whose_cells_touch() -> None:
    """A 4x4 grid without gutters, whose cells grid detection does not see: the photo is found
    on the cut around its inliers, made from the focus copy. Restored from the cache's JSON the
    features find it as the fresh ones do; without the focus copy (the cache's older layout)
    they do not."""
    photo = synthetic_photo(300, (640, 480))
    index = ProtectedIndex()
    index.add("p0", compute_signature(photo))
    cells = [synthetic_photo(900 + i, (640, 480) if i % 2 else (480, 640)) for i in range(16)]
    cells[5] = photo
    pixels, _ = make_grid(4, gutter=0, photos=cells)
    fresh = compact_features(pixels, query_hashes(pixels), cells=[], boxes=[])
    expected = _hits(index, fresh)
    assert expected and expected[0][0] == "p0" and expected[0][3], expected
    stored = json.loads(json.dumps(features_to_json(fresh)))
    assert _hits(index, features_from_json(stored, fresh.hashes)) == expected
    del stored["focus"]
    stored["v"] = 2
    with pytest.raises(FeaturesCodecError):
        features_from_json(stored, fresh.hashes)
    stored["v"] = 3
    without = features_from_json(stored, fresh.hashes)
    assert without.focus_copy() is None
    assert not any(h.match for h in index.search(without))


@pytest.mark.parametrize("edit", ["screenshot", "small-screenshot", "mirror"])
def test_restored_features_verify_as_fresh_ones(
    photo: Image.Image, tmp_path: Path, edit: str
) -> None:
    index = ProtectedIndex()
    index.add("bridge", compute_signature(np.asarray(photo)))
    if edit == "mirror":
        query = ImageOps.mirror(photo)
    else:
        query = _screenshot(photo, 380 if edit == "small-screenshot" else None)
    fresh = _features(query, tmp_path, f"{edit}.jpg")
    restored = features_from_json(json.loads(json.dumps(features_to_json(fresh))), [])
    expected = _hits(index, QueryFeatures([], **_no_hashes(fresh)))
    assert expected and expected[0][0] == "bridge" and expected[0][3], expected
    if edit == "small-screenshot":  # found in a region, on modest support: checked aligned
        assert expected[0][2] is not None, "the aligned check should have been measured"
    assert _hits(index, restored) == expected
    if edit != "screenshot":  # (a photo posted at full size is found on the page's own ORB)
        # What the old cache layout kept (ORB only) loses the mirror, regions and check.
        orb_only = QueryFeatures([], keypoints=fresh.keypoints, descriptors=fresh.descriptors)
        assert _hits(index, orb_only) != expected


def _no_hashes(f: QueryFeatures) -> dict[str, Any]:
    """The same features without the query's PDQ hashes: verification by features alone."""
    return {
        "keypoints": f.keypoints,
        "descriptors": f.descriptors,
        "mirror": f.mirrored(),
        "regions": f.regions(),
        "check": f.check,
    }


def test_bad_layouts_are_refused(photo: Image.Image, tmp_path: Path) -> None:
    good = features_to_json(_features(photo, tmp_path, "p.jpg"))
    orb = good["orb"]
    bad: list[Any] = [
        orb,  # version 1: a bare ORB string
        {**good, "v": 2},  # no focus copy
        {**good, "v": 4},
        {**good, "orb": "not base64!"},
        {**good, "orb": orb[:-8] + "AAAA"},  # not whole keypoints
        {**good, "check": {"png": orb, "scale": 0.5}},  # not a PNG
        {**good, "check": {**good["check"], "scale": 4}},
        {**good, "check": {"png": good["check"]["png"]}},
        {**good, "regions": {"a": 1}},
        {**good, "mirror": "x"},
        {**good, "check": None},
        {**good, "focus": {**good["focus"], "scale": 2.0}},
        {**good, "focus": {"png": good["check"]["png"]}},
        {**good, "focus": "x"},
        # a mirror check stored as the main one flipped, with no main one
        {k: v for k, v in good.items() if k != "check"}
        | {"mirror": {**good["mirror"], "check": "flip"}},
    ]
    for data in bad:
        with pytest.raises(FeaturesCodecError):
            features_from_json(data, [])


def test_cache_row_with_unreadable_features_keeps_its_views(
    photo: Image.Image, tmp_path: Path
) -> None:
    path = tmp_path / "p.jpg"
    photo.save(path, quality=90)
    record = hash_file(path, robust=True, features=True)
    hashes = ContentSignals(path="", signals=dict(record.signals), views=record.views)
    row = extras_json(hashes)
    assert row is not None and "features" not in row
    blank = ContentSignals(path="", signals=dict(record.signals))
    restored = extras_from_json(blank, {**row, "features": "AAAA"})  # the old layout
    assert restored.query_views() == hashes.query_views() and restored.features is None
    # so a crawl that wants features fetches and hashes this content once more
    assert not has_extras(restored, robust=True, features=True)
