"""The known-abuse query side: exact rotations and flips, caption bars removed, centred crops
undone, and the cells of a grid."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from childguard.robust.grid import grid_cells
from childguard.robust.query import (
    QUERY_SIDE,
    VIEW_THRESHOLD,
    Box,
    _edge_distance,
    _text_bars,
    caption_boxes,
    query_hashes,
    query_views,
)
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_NAMES,
    DIHEDRAL_VIEW_THRESHOLD,
    MIN_QUALITY,
    UNCROP_VIEW_THRESHOLD,
    UNPAD_VIEW_THRESHOLD,
    WEAK_VIEW_THRESHOLD,
    PdqSignal,
    pdq_dihedral_exact,
    pdq_dihedral_from_pixels,
    pdq_from_pixels,
    view_cap,
    view_limit,
    view_rank,
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
    # A grid is no crop of one photo: no crop guesses are hashed.
    assert not [v for v in views if v.startswith("uncropped")]
    # The cells come back for the protected search, in the query's own coordinates (it is
    # larger than QUERY_SIDE, so they were found on a reduced copy).
    assert max(canvas.shape[:2]) > QUERY_SIDE
    hashes, found = query_views(canvas)
    assert {q.variant: q.pdq for q in hashes} == views
    direct = grid_cells(canvas)
    assert len(found) == len(direct) == 9
    for a, b in zip(found, direct, strict=True):
        assert max(abs(a.x0 - b.x0), abs(a.y0 - b.y0), abs(a.x1 - b.x1), abs(a.y1 - b.y1)) <= 3


def _weak_sky(seed: int, side: int = 384) -> np.ndarray:
    """A faint deep-sky picture: black sky, a dim elongated glow and sparse faint stars; its
    PDQ quality is well under MIN_QUALITY, as for many deep-sky photos."""
    rng = np.random.default_rng(seed)
    sky = np.zeros((side, side), np.float32)
    yy, xx = np.mgrid[:side, :side]
    cx, cy = rng.uniform(0.3, 0.7, 2) * side
    sky += 40 * np.exp(-(((xx - cx) / (0.25 * side)) ** 2 + ((yy - cy) / (0.12 * side)) ** 2))
    for x, y in rng.integers(0, side, (120, 2)):
        sky[y, x] = rng.uniform(120, 255)
    sky = cv2.GaussianBlur(sky, (0, 0), 1.0) * 2
    grey = sky.clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.stack([grey, grey, (grey * 0.9).astype(np.uint8)], axis=2))


@pytest.mark.parametrize("turn", ["rot90", "hflip"])
def test_a_turned_copy_of_a_weak_photo_is_found_within_the_weak_cap(turn: str) -> None:
    photo = _weak_sky(1)
    ref, quality = pdq_from_pixels(photo)
    assert quality < MIN_QUALITY
    query = np.ascontiguousarray(np.rot90(photo, 3) if turn == "rot90" else photo[:, ::-1])
    views = query_hashes(query)
    assert set(DIHEDRAL_NAMES) <= {q.variant for q in views}
    assert PdqSignal.distance(ref, views[0].pdq) > DEFAULT_THRESHOLD
    d, view = min((PdqSignal.distance(ref, q.pdq), q) for q in views if q.variant != "original")
    assert d == 0, view
    assert view_cap(view.variant, view.quality) == WEAK_VIEW_THRESHOLD


def test_view_caps() -> None:
    assert view_cap("original", 10) is None
    assert view_cap("original", 90) is None
    assert view_cap("rot90", MIN_QUALITY - 1) == WEAK_VIEW_THRESHOLD
    assert view_cap("trimmed", 20) == WEAK_VIEW_THRESHOLD
    assert view_cap("flipy", MIN_QUALITY) == DIHEDRAL_VIEW_THRESHOLD
    assert view_cap("uncropped13", 80) == UNCROP_VIEW_THRESHOLD
    assert view_cap("unpadded", 80) == UNPAD_VIEW_THRESHOLD
    for other in ("trimmed", "centred1", "framed", "uncaptioned0", "region0", "cell3", "deskewed"):
        assert view_cap(other, 80) == VIEW_THRESHOLD
    assert WEAK_VIEW_THRESHOLD < DIHEDRAL_VIEW_THRESHOLD < UNCROP_VIEW_THRESHOLD < VIEW_THRESHOLD
    assert UNPAD_VIEW_THRESHOLD < VIEW_THRESHOLD


def test_a_derived_view_counts_its_margin_against_the_original() -> None:
    """The original hash ranks as its distance; a derived view as its distance plus 31 less
    its cap, and it matches at a bank threshold exactly when that rank is within the threshold
    (31 at most)."""
    assert view_rank("original", 30, 20) == 20
    assert view_rank("rot90", 80, 16) == 16 + DEFAULT_THRESHOLD - DIHEDRAL_VIEW_THRESHOLD > 20
    assert view_rank("region0", 80, 12) == 12
    for variant, quality in (("rot90", 80), ("rot90", 30), ("uncropped27", 70), ("unpadded", 70)):
        for threshold in (10, 20, 31, 52):
            limit = view_limit(variant, quality, threshold)
            for d in range(0, 40):
                assert (d <= limit) == (
                    view_rank(variant, quality, d) <= min(threshold, DEFAULT_THRESHOLD)
                )
        assert view_limit(variant, quality, DEFAULT_THRESHOLD) == view_cap(variant, quality)
        assert view_limit(variant, quality, 52) == view_cap(variant, quality)
    assert view_limit("original", 30, 52) == 52
    # A bank stricter than the default is as much stricter for a derived view.
    assert view_limit("unpadded", 70, 20) == 20 - (DEFAULT_THRESHOLD - UNPAD_VIEW_THRESHOLD)


def _meme(
    photo: np.ndarray,
    bars: tuple[int, int],
    lines: tuple[int, int],
    bg: tuple[int, int, int],
    fg: tuple[int, int, int],
    size: int,
) -> np.ndarray:
    """Caption bars as a meme generator makes them: the text's line boxes centred in each bar."""
    h, w = photo.shape[:2]
    top, bottom = bars
    canvas = Image.new("RGB", (w, h + top + bottom), bg)
    canvas.paste(Image.fromarray(photo), (0, top))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=size)
    for y0, bar, n in ((0, top, lines[0]), (top + h, bottom, lines[1])):
        for i in range(n):
            text = ["WHEN THE WEEKEND COMES", "NOBODY LITERALLY NOBODY"][i % 2]
            x = (w - draw.textlength(text, font=font)) / 2
            draw.text((x, y0 + (bar - n * size * 1.15) / 2 + i * size * 1.15), text, fg, font)
    return np.asarray(canvas)


def _near(boxes: list[Box], want: Box, slack: int) -> bool:
    return any(
        max(abs(b.x0 - want.x0), abs(b.y0 - want.y0), abs(b.x1 - want.x1), abs(b.y1 - want.y1))
        <= slack
        for b in boxes
    )


@pytest.mark.parametrize(
    ("layout", "bars", "lines", "size"),
    [
        ("black bars on a black edge", (70, 80), (1, 2), 22),
        ("white bars on a white edge", (64, 56), (2, 1), 16),
        ("large letters", (60, 60), (1, 1), 34),
        ("red bars on a red edge", (66, 60), (2, 1), 18),
    ],
)
def test_caption_bars_are_found_by_their_text(
    photos: list[np.ndarray], layout: str, bars: tuple[int, int], lines: tuple[int, int], size: int
) -> None:
    """Where the photo's own edge is the bar's colour, only the text says where the bar ends."""
    if layout.startswith("black"):
        photo = photos[2].copy()
        photo[:30] = photo[-40:] = 0  # a black sky, up to the photo's edges
        bg, fg = (0, 0, 0), (255, 255, 255)
    elif layout.startswith("white"):
        photo = photos[3].copy()
        photo[:40] = photo[-30:] = 255  # the backdrop, up to the photo's edges
        bg, fg = (255, 255, 255), (0, 0, 0)
    elif layout.startswith("red"):
        photo = photos[5].copy()
        photo[:36] = photo[-36:] = (200, 30, 30)  # a backdrop of the bars' colour
        bg, fg = (200, 30, 30), (255, 255, 0)
    else:
        photo, bg, fg = photos[4], (255, 255, 255), (0, 0, 0)
    h, w = photo.shape[:2]
    meme = _meme(photo, bars, lines, bg, fg, size)
    assert _near(caption_boxes(meme), Box(0, bars[0], w, bars[0] + h), 3), caption_boxes(meme)
    ref, _ = pdq_from_pixels(photo)
    views = query_hashes(meme)
    assert PdqSignal.distance(ref, views[0].pdq) > DEFAULT_THRESHOLD
    best = min(PdqSignal.distance(ref, q.pdq) for q in views if q.variant.startswith("uncap"))
    assert best <= DEFAULT_THRESHOLD


def test_stars_at_a_dark_photo_edge_are_no_caption() -> None:
    """A black-edged deep-sky photo without bars: its stars make no text bar."""
    photo = _weak_sky(3)
    photo = cv2.copyMakeBorder(photo[40:-40], 40, 40, 0, 0, cv2.BORDER_CONSTANT, value=0)
    h = photo.shape[0]
    band = int(0.35 * h) + 1
    for edge in (photo[:band], photo[::-1][:band]):
        dist = _edge_distance(edge)
        assert dist is not None
        assert _text_bars(dist, h, top=True) == []
