"""Compact query features survive the JSON round trip of the crawl's content cache whole: ORB
features, check image, mirror and regions, so restored features verify a screenshot and a
flipped copy exactly as fresh ones do; unreadable or old layouts are refused with a clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageOps

from childguard.crawl.hashing import extras_from_json, extras_json, has_extras
from childguard.pipeline import hash_file
from childguard.robust.features_codec import (
    FeaturesCodecError,
    features_from_json,
    features_to_json,
)
from childguard.robust.protected import ProtectedIndex
from childguard.robust.query_features import QueryFeatures
from childguard.robust.signature import compute_signature
from childguard.signals.content import ContentSignals

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq" / "images"


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    return Image.open(CONF / "dih_bridge-1-original.jpg").convert("RGB").resize((640, 402))


def _screenshot(photo: Image.Image) -> Image.Image:
    page = Image.new("RGB", (1280, 1000), (250, 250, 250))
    draw = ImageDraw.Draw(page)
    for y in range(40, 300, 24):
        draw.text((60, y), "a page with some text around a posted photo", fill=(20, 20, 20))
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


@pytest.mark.parametrize("edit", ["screenshot", "mirror"])
def test_restored_features_verify_as_fresh_ones(
    photo: Image.Image, tmp_path: Path, edit: str
) -> None:
    index = ProtectedIndex()
    index.add("bridge", compute_signature(np.asarray(photo)))
    query = _screenshot(photo) if edit == "screenshot" else ImageOps.mirror(photo)
    fresh = _features(query, tmp_path, f"{edit}.jpg")
    restored = features_from_json(json.loads(json.dumps(features_to_json(fresh))), [])
    expected = _hits(index, QueryFeatures([], **_no_hashes(fresh)))
    assert expected and expected[0][0] == "bridge" and expected[0][3], expected
    if edit == "screenshot":  # found in a region, on modest support: checked aligned
        assert expected[0][2] is not None, "the aligned check should have been measured"
    assert _hits(index, restored) == expected
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
        {**good, "v": 3},
        {**good, "orb": "not base64!"},
        {**good, "orb": orb[:-8] + "AAAA"},  # not whole keypoints
        {**good, "check": {"png": orb, "scale": 0.5}},  # not a PNG
        {**good, "check": {**good["check"], "scale": 4}},
        {**good, "check": {"png": good["check"]["png"]}},
        {**good, "regions": {"a": 1}},
        {**good, "mirror": "x"},
        {**good, "check": None},
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
