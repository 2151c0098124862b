"""query_hashes: the query-side views that let a plain PDQ bank find edited photos."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageFilter

from childguard.robust.query import QueryHash, content_box, deskew, photo_regions, query_hashes
from childguard.signals.pdq import DEFAULT_THRESHOLD, PdqSignal, pdq_from_pixels


def _best(query: np.ndarray, original: np.ndarray) -> tuple[int, str]:
    ref, _ = pdq_from_pixels(original)
    return min((PdqSignal.distance(q.pdq, ref), q.variant) for q in query_hashes(query))


def test_original_first_and_types(photos: list[np.ndarray]) -> None:
    hashes = query_hashes(photos[0])
    assert isinstance(hashes[0], QueryHash)
    assert hashes[0].variant == "original"
    assert hashes[0].pdq == pdq_from_pixels(photos[0])[0]
    assert len({h.pdq for h in hashes}) == len(hashes)
    assert query_hashes(photos[0], mode="protected") == hashes


def test_rejects_bad_input(photos: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="mode"):
        query_hashes(photos[0], mode="nope")
    with pytest.raises(ValueError, match="RGB"):
        query_hashes(photos[0][:, :, 0])
    with pytest.raises(ValueError, match="RGB"):
        query_hashes(photos[0].astype(np.float32))


def test_flip_and_rotate90_found_by_dihedral_variants(photos: list[np.ndarray]) -> None:
    d, variant = _best(np.ascontiguousarray(photos[1][:, ::-1]), photos[1])
    assert d <= DEFAULT_THRESHOLD and variant != "original"
    d, _ = _best(np.ascontiguousarray(np.rot90(photos[1])), photos[1])
    assert d <= DEFAULT_THRESHOLD


@pytest.mark.parametrize("blurred", [False, True])
def test_borders_are_trimmed(photos: list[np.ndarray], blurred: bool) -> None:
    img = Image.fromarray(photos[2])
    w, h = img.size
    size = (int(w * 1.3), int(h * 1.3))
    canvas = (
        img.resize(size).filter(ImageFilter.GaussianBlur(15))
        if blurred
        else Image.new("RGB", size, (20, 200, 40))
    )
    canvas.paste(img, ((size[0] - w) // 2, (size[1] - h) // 2))
    padded = np.asarray(canvas)
    assert pdq_from_pixels(padded)[0] != pdq_from_pixels(photos[2])[0]
    d, variant = _best(padded, photos[2])
    assert d <= DEFAULT_THRESHOLD, (d, variant)
    assert variant in ("trimmed", "framed")


def test_content_box_of_letterbox(photos: list[np.ndarray]) -> None:
    h, w = photos[3].shape[:2]
    boxed = np.zeros((h + 120, w, 3), np.uint8)
    boxed[60 : 60 + h] = photos[3]
    box = content_box(boxed)
    assert abs(box.y0 - 60) <= 3 and abs(box.y1 - (60 + h)) <= 3
    assert box.x0 <= 2 and box.x1 >= w - 2


def test_photo_found_inside_a_screenshot(photos: list[np.ndarray]) -> None:
    page = np.full((900, 800, 3), 255, np.uint8)
    page[:70] = (40, 60, 90)
    h, w = photos[4].shape[:2]
    page[120 : 120 + h, 150 : 150 + w] = photos[4]
    for y in range(120 + h + 30, 880, 24):  # text-like lines
        page[y : y + 8, 150 : 150 + int(w * 0.8) : 3] = 30
    regions = photo_regions(page)
    assert regions and abs(regions[0].x0 - 150) <= 4 and abs(regions[0].y0 - 120) <= 4
    d, variant = _best(page, photos[4])
    assert d <= DEFAULT_THRESHOLD and variant.startswith("region")


@pytest.mark.parametrize("angle", [-7, 3])
def test_tilted_photo_is_deskewed(angle: float, make_photo: Callable[[int], np.ndarray]) -> None:
    original = make_photo(9)
    tilted = np.asarray(
        Image.fromarray(original).rotate(angle, expand=True, resample=Image.Resampling.BILINEAR)
    )
    upright = deskew(tilted)
    assert upright is not None
    assert (
        abs(upright.shape[0] - original.shape[0]) <= 8
        and abs(upright.shape[1] - original.shape[1]) <= 8
    )
    d, _ = _best(tilted, original)
    assert d <= DEFAULT_THRESHOLD


def test_untouched_photo_gets_no_speculative_crops_from_borders(photos: list[np.ndarray]) -> None:
    variants = {h.variant for h in query_hashes(photos[5])}
    assert "trimmed" not in variants and "deskewed" not in variants
