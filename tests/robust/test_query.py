"""query_hashes: the query-side views that let a plain PDQ bank find edited photos."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageFilter

from childguard.robust.query import (
    Box,
    QueryHash,
    centred_guesses,
    content_box,
    deskew,
    framed_box,
    padding_box,
    photo_regions,
    query_hashes,
)
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
    assert variant in ("trimmed", "unpadded", "framed") or variant.startswith("centred")


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


def _smooth_edged_photo(make_photo: Callable[[int], np.ndarray]) -> np.ndarray:
    """A photo whose outer band is smooth (sky, studio backdrop): a blurred copy hides its sides."""
    photo = make_photo(11).copy()
    soft = np.asarray(Image.fromarray(photo).filter(ImageFilter.GaussianBlur(12)))
    h, w = photo.shape[:2]
    photo[: h // 5] = soft[: h // 5]
    photo[:, : w // 6] = soft[:, : w // 6]
    return photo


@pytest.mark.parametrize("fraction", [0.1, 0.2])
def test_framed_box_finds_a_photo_pasted_on_its_own_blur(
    make_photo: Callable[[int], np.ndarray], fraction: float
) -> None:
    photo = _smooth_edged_photo(make_photo)
    h, w = photo.shape[:2]
    pw, ph = round(w * fraction / 2), round(h * fraction / 2)
    size = (w + 2 * pw, h + 2 * ph)
    canvas = Image.fromarray(photo).resize(size).filter(ImageFilter.GaussianBlur(max(size) / 30))
    canvas.paste(Image.fromarray(photo), (pw, ph))
    box = framed_box(np.asarray(canvas))
    assert abs(box.x0 - pw) <= 3 and abs(box.y0 - ph) <= 3, box
    assert abs(box.x1 - (pw + w)) <= 3 and abs(box.y1 - (ph + h)) <= 3, box
    d, _ = _best(np.asarray(canvas), photo)
    assert d <= DEFAULT_THRESHOLD


def test_framed_box_leaves_an_unframed_photo_whole(photos: list[np.ndarray]) -> None:
    for photo in photos[:4]:
        h, w = photo.shape[:2]
        box = framed_box(photo)
        assert box.x0 <= 0.02 * w and box.y0 <= 0.02 * h, box
        assert box.x1 >= 0.98 * w and box.y1 >= 0.98 * h, box


def test_screenshot_region_survives_a_flat_sky(make_photo: Callable[[int], np.ndarray]) -> None:
    """A photo whose top third is one flat colour: its rows are uniform only within the photo."""
    photo = make_photo(12).copy()
    h, w = photo.shape[:2]
    photo[: h // 3] = (110, 160, 230)
    page = np.full((h + 400, w + 300, 3), 250, np.uint8)
    page[:60] = (30, 30, 60)
    page[100 : 100 + h, 80 : 80 + w] = photo
    for y in range(100 + h + 20, page.shape[0] - 20, 22):
        page[y : y + 7, 80 : 80 + int(w * 0.9) : 3] = 20
    regions = photo_regions(page)
    assert regions, "no region found"
    r = regions[0]
    assert (
        abs(r.x0 - 80) <= 4
        and abs(r.y0 - 100) <= 4
        and abs(r.x1 - (80 + w)) <= 4
        and abs(r.y1 - (100 + h)) <= 4
    ), r
    d, variant = _best(page, photo)
    assert d <= DEFAULT_THRESHOLD and variant.startswith("region")


def test_every_collage_cell_is_a_region(make_photo: Callable[[int], np.ndarray]) -> None:
    cells = [make_photo(20 + i) for i in range(4)]
    h, w = cells[0].shape[:2]
    g = 8
    canvas = np.full((2 * h + 3 * g, 2 * w + 3 * g, 3), 255, np.uint8)
    for i, cell in enumerate(cells):
        y, x = g + (i // 2) * (h + g), g + (i % 2) * (w + g)
        canvas[y : y + h, x : x + w] = cell
    assert len(photo_regions(canvas)) == 4
    for cell in cells:
        d, variant = _best(canvas, cell)
        assert d <= DEFAULT_THRESHOLD and variant.startswith("region"), (d, variant)


def _star_field(seed: int, side: int = 400, stars: int = 40) -> np.ndarray:
    """A synthetic deep-sky picture: dark noisy sky, a faint nebula, a few bright stars."""
    rng = np.random.default_rng(seed)
    sky = rng.normal(12, 3, (side, side)).clip(4, 255)
    yy, xx = np.mgrid[:side, :side]
    cx, cy = rng.uniform(0.3, 0.7, 2) * side
    sky += 120 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (side / 5) ** 2))
    for x, y in rng.integers(10, side - 10, (stars, 2)):
        sky[y - 1 : y + 2, x - 1 : x + 2] = 255
    grey = sky.clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.stack([grey, grey, (grey * 0.8).astype(np.uint8)], axis=2))


def _padded(
    photo: np.ndarray, *, blurred: bool = False, colour: tuple[int, int, int] = (0, 0, 0)
) -> np.ndarray:
    """`photo` in a 40 px pad: a blurred, enlarged copy of itself, or solid `colour`."""
    h, w = photo.shape[:2]
    size = (w + 80, h + 80)
    if blurred:
        canvas = np.array(
            Image.fromarray(photo).resize(size).filter(ImageFilter.GaussianBlur(size[0] / 30))
        )
    else:
        canvas = np.empty((size[1], size[0], 3), np.uint8)
        canvas[:] = colour
    canvas[40 : 40 + h, 40 : 40 + w] = photo
    return canvas


@pytest.mark.parametrize("colour", [(0, 0, 0), (230, 180, 40)])
def test_dark_photo_on_solid_padding_is_unpadded(colour: tuple[int, int, int]) -> None:
    photo = _star_field(3)
    h, w = photo.shape[:2]
    canvas = _padded(photo, colour=colour)
    box = padding_box(canvas)
    assert (box.x0, box.y0, box.x1, box.y1) == (40, 40, 40 + w, 40 + h), box
    d, _ = _best(canvas, photo)
    assert d <= 8, d


@pytest.mark.parametrize("blurred", [False, True])
def test_weak_photo_is_still_unpadded(blurred: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A photo whose own hash is weak (PDQ quality under 50, as many deep-sky images are) is
    found through a padding-removal view of the same weak quality."""
    photo = _star_field(3, stars=10)
    quality = pdq_from_pixels(photo)[1]
    assert 20 <= quality < 50, quality
    canvas = _padded(photo, blurred=blurred, colour=(255, 255, 255))
    d, variant = _best(canvas, photo)
    assert d <= 8 and variant in ("unpadded", "centred0"), (d, variant)
    # With the floor of the other derived views, that view is dropped: the best left is far
    # off (on white, a `trimmed` box of higher quality happens to land 30 bits away).
    monkeypatch.setattr("childguard.robust.query.PAD_VIEW_QUALITY", 50)
    assert _best(canvas, photo)[0] >= 24


def _black_edged_star_field() -> np.ndarray:
    """A star field whose own left, right and top edges are pure black, as deep-sky photos are."""
    photo = _star_field(7)
    photo[:30] = 0
    photo[:, :50] = 0
    photo[:, -20:] = 0
    return photo


@pytest.mark.parametrize("blurred", [False, True])
def test_centred_pad_running_into_a_black_edged_photo_is_guessed(blurred: bool) -> None:
    """The pad's colour runs on into the photo by a different amount on three sides; the
    narrowest band (the bottom, where the photo reaches its frame) gives the pad."""
    photo = _black_edged_star_field()
    h, w = photo.shape[:2]
    canvas = _padded(photo, blurred=blurred)
    truth = Box(40, 40, 40 + w, 40 + h)
    solid = padding_box(canvas)
    if not blurred:  # the exact solid trim runs past the pad on three sides
        assert (solid.x0, solid.y0) == (90, 70) and solid.x1 == 40 + w - 20, solid
    guesses = centred_guesses(canvas)
    assert any(
        max(abs(g.x0 - truth.x0), abs(g.y0 - truth.y0), abs(g.x1 - truth.x1), abs(g.y1 - truth.y1))
        <= 1
        for g in guesses
    ), guesses
    assert pdq_from_pixels(canvas)[0] != pdq_from_pixels(photo)[0]
    d, variant = _best(canvas, photo)
    assert d <= DEFAULT_THRESHOLD, (d, variant)


def test_no_centred_guesses_for_a_photo_with_detail_to_its_edges(photos: list[np.ndarray]) -> None:
    for photo in photos[:3]:
        assert centred_guesses(photo) == []


def test_padding_box_leaves_an_unpadded_photo_whole(photos: list[np.ndarray]) -> None:
    h, w = photos[0].shape[:2]
    box = padding_box(photos[0])
    assert (box.x1 - box.x0, box.y1 - box.y0) == (w, h), box


def test_dark_photo_on_a_white_page_is_one_region() -> None:
    """A dark photo's own uniform rows and columns must not split it: gutters are page-coloured."""
    photo = _star_field(5, 300)
    photo[:, :40] = 6  # a band of flat dark sky, uniform down the photo
    page = np.full((640, 500, 3), 255, np.uint8)
    page[:50] = (40, 90, 60)
    page[80:380, 30:330] = photo
    for y in range(400, 620, 20):
        page[y : y + 7, 30:300:3] = 30
    regions = photo_regions(page)
    assert regions, "no region found"
    r = regions[0]
    assert max(abs(r.x0 - 30), abs(r.y0 - 80), abs(r.x1 - 330), abs(r.y1 - 380)) <= 4, r
    d, variant = _best(page, photo)
    assert d <= DEFAULT_THRESHOLD, (d, variant)
