"""The known-abuse query side: exact rotations and flips, caption bars removed, centred crops
undone, and the cells of a grid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageDraw

from childguard.robust.query import (
    Box,
    caption_boxes,
    query_hashes,
)
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_NAMES,
    PdqSignal,
    pdq_dihedral_exact,
    pdq_dihedral_from_pixels,
    pdq_from_pixels,
)


def _turned(pixels: np.ndarray) -> list[np.ndarray]:
    """The 8 rotations and flips in DIHEDRAL_NAMES order, made from the pixels."""
    return [
        pixels,
        np.rot90(pixels, 1),
        np.rot90(pixels, 2),
        np.rot90(pixels, 3),
        pixels[::-1],
        pixels[:, ::-1],
        pixels.transpose(1, 0, 2),
        np.rot90(pixels, 2).transpose(1, 0, 2),
    ]


def test_dihedral_hashes_are_the_hashes_of_the_turned_images(
    photos: list[np.ndarray],
) -> None:
    for photo in photos[:3]:
        exact, quality = pdq_dihedral_exact(photo)
        assert quality == pdq_from_pixels(photo)[1]
        for name, turned, value in zip(DIHEDRAL_NAMES, _turned(photo), exact, strict=True):
            assert value == pdq_from_pixels(np.ascontiguousarray(turned))[0], name


def test_pdqhash_own_variants_are_off_where_the_exact_ones_are_not(
    photos: list[np.ndarray],
) -> None:
    """Why the exact variants: pdqhash's DCT-derived ones miss the turned image by many bits."""
    worst = 0
    for photo in photos:
        derived, _ = pdq_dihedral_from_pixels(photo)
        for turned, value in zip(_turned(photo)[1:], derived[1:], strict=True):
            actual = pdq_from_pixels(np.ascontiguousarray(turned))[0]
            worst = max(worst, PdqSignal.distance(actual, value))
    assert worst > 10


@pytest.mark.parametrize("turn", ["rot90", "hflip", "rot180", "transpose"])
def test_a_turned_copy_is_found_at_distance_zero(photos: list[np.ndarray], turn: str) -> None:
    photo = photos[1]
    ref, _ = pdq_from_pixels(photo)
    query = {
        "rot90": np.rot90(photo, 3),
        "hflip": photo[:, ::-1],
        "rot180": photo[::-1, ::-1],
        "transpose": photo.transpose(1, 0, 2),
    }[turn]
    found = {q.variant: q.pdq for q in query_hashes(np.ascontiguousarray(query))}
    assert set(DIHEDRAL_NAMES) <= set(found)
    assert min(PdqSignal.distance(ref, v) for v in found.values()) == 0


def _captioned(photo: np.ndarray, top: int, bottom: int, dark: bool) -> np.ndarray:
    h, w = photo.shape[:2]
    bg, fg = ((0, 0, 0), (255, 255, 255)) if dark else ((255, 255, 255), (0, 0, 0))
    canvas = Image.new("RGB", (w, h + top + bottom), bg)
    canvas.paste(Image.fromarray(photo), (0, top))
    draw = ImageDraw.Draw(canvas)
    if top:
        draw.text((w // 5, top // 3), "WHEN THE WEEKEND FINALLY COMES", fill=fg)
    if bottom:
        draw.text((w // 4, top + h + bottom // 3), "NOBODY: LITERALLY NOBODY", fill=fg)
    return np.asarray(canvas)


@pytest.mark.parametrize(("top", "bottom", "dark"), [(60, 50, False), (70, 0, True)])
def test_caption_bars_are_removed(
    photos: list[np.ndarray], top: int, bottom: int, dark: bool
) -> None:
    photo = photos[2]
    h, w = photo.shape[:2]
    meme = _captioned(photo, top, bottom, dark)
    assert Box(0, top, w, top + h) in caption_boxes(meme)
    ref, _ = pdq_from_pixels(photo)
    views = {q.variant: q.pdq for q in query_hashes(meme)}
    assert PdqSignal.distance(ref, views["original"]) > DEFAULT_THRESHOLD
    assert PdqSignal.distance(ref, views["uncaptioned0"]) <= 4


def test_no_caption_bars_on_a_plain_photo(photos: list[np.ndarray]) -> None:
    for photo in photos:
        assert caption_boxes(photo) == []


def test_a_centred_crop_is_undone_by_a_mirrored_border(photos: list[np.ndarray]) -> None:
    for photo in photos:
        ref, _ = pdq_from_pixels(photo)
        h, w = photo.shape[:2]
        keep = 0.9**0.5  # 10% of the area cut off, centred
        cw, ch = round(w * keep), round(h * keep)
        x, y = (w - cw) // 2, (h - ch) // 2
        views = {q.variant: q.pdq for q in query_hashes(photo[y : y + ch, x : x + cw].copy())}
        assert PdqSignal.distance(ref, views["original"]) > DEFAULT_THRESHOLD
        assert PdqSignal.distance(ref, views["uncropped27"]) <= 24


def test_each_cell_of_a_grid_is_hashed(
    make_photo: Callable[[int, tuple[int, int]], np.ndarray],
) -> None:
    photo = make_photo(0, (480, 360))
    ref, _ = pdq_from_pixels(photo)
    cells = [make_photo(100 + i, (240, 180)) for i in range(9)]
    cells[4] = np.asarray(Image.fromarray(photo).resize((240, 180), Image.Resampling.LANCZOS))
    gutter = 8
    canvas = np.full((3 * 180 + 4 * gutter, 3 * 240 + 4 * gutter, 3), 255, np.uint8)
    for i, cell in enumerate(cells):
        r, c = divmod(i, 3)
        y, x = gutter + r * (180 + gutter), gutter + c * (240 + gutter)
        canvas[y : y + 180, x : x + 240] = cell
    views = {q.variant: q.pdq for q in query_hashes(canvas)}
    assert sum(v.startswith("cell") for v in views) >= 6
    assert PdqSignal.distance(ref, views["cell4"]) <= DEFAULT_THRESHOLD
