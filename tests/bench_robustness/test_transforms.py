"""Transforms are reproducible, seeded per (transform, photo), and do what their names say."""

from __future__ import annotations

import numpy as np
import pytest
from bench.robustness.transforms import TRANSFORMS, apply
from PIL import Image


def _photo(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)


FILLERS = [_photo(10), _photo(11), _photo(12)]


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_reproducible(name: str) -> None:
    img = _photo(1)
    a = np.asarray(apply(name, img, "photo-a", FILLERS))
    b = np.asarray(apply(name, img, "photo-a", FILLERS))
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert np.array_equal(a, b)


@pytest.mark.parametrize(
    "name", ["crop20-off", "watermark", "stickers", "screenshot", "collage2x2", "noise"]
)
def test_seed_depends_on_photo_id(name: str) -> None:
    img = _photo(1)
    a = np.asarray(apply(name, img, "photo-a", FILLERS))
    b = np.asarray(apply(name, img, "photo-b", FILLERS))
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_geometry() -> None:
    img = _photo(2)
    w, h = img.size
    crop = apply("crop20", img, "x")
    assert abs(crop.width * crop.height / (w * h) - 0.8) < 0.02
    pad = apply("pad20", img, "x")
    assert pad.size == (w + 2 * round(w * 0.1), h + 2 * round(h * 0.1))
    # The photo sits untouched in the middle of the padded canvas.
    inner = np.asarray(pad)[
        round(h * 0.1) : round(h * 0.1) + h, round(w * 0.1) : round(w * 0.1) + w
    ]
    assert np.array_equal(inner, np.asarray(img))
    assert apply("resize0.25", img, "x").size == (80, 60)
    assert max(apply("thumb150", img, "x").size) == 150
    assert apply("rot90", img, "x").size == (h, w)
    collage = apply("collage2x2", img, "x", FILLERS)
    assert collage.width > 2 * w and collage.height > 2 * h


def _cells(canvas: np.ndarray, n: int, gutter: int) -> list[np.ndarray]:
    side = canvas.shape[0]
    cell = (side - (n + 1) * gutter) // n
    return [
        canvas[
            gutter + r * (cell + gutter) : gutter + r * (cell + gutter) + cell,
            gutter + c * (cell + gutter) : gutter + c * (cell + gutter) + cell,
        ]
        for r in range(n)
        for c in range(n)
    ]


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("gutter", [False, True])
def test_grid_holds_the_square_cropped_photo_in_one_cell(n: int, gutter: bool) -> None:
    from bench.robustness.transforms import GRID_SIDE

    img = _photo(3, (480, 320))
    name = f"grid{n}x{n}" + ("-gutter" if gutter else "")
    out = np.asarray(apply(name, img, "photo-g", FILLERS)).astype(np.int16)
    assert out.shape[0] == out.shape[1] and abs(out.shape[0] - GRID_SIDE) < n + 2 * 9
    g = max(3, GRID_SIDE // 120) if gutter else 0
    small = 48
    cells = [
        np.asarray(Image.fromarray(c.astype(np.uint8)).resize((small, small))).astype(np.int16)
        for c in _cells(out, n, g)
    ]
    # The square crops of the photo (centred and off-centre) as a cell would show them.
    candidates = [
        np.asarray(img.crop((x, 0, x + 320, 320)).resize((small, small))).astype(np.int16)
        for x in range(0, 161, 4)
    ]
    best = [min(float(np.abs(c - cand).mean()) for cand in candidates) for c in cells]
    # Exactly one cell is the photo; the rest are fillers.
    assert sum(b < 4 for b in best) == 1
    assert sorted(best)[1] > 15
    if gutter:
        assert out[:g, :].std() == 0 and out[:, :g].std() == 0  # one-colour gutters


def test_grid_layout_depends_on_photo_id() -> None:
    img = _photo(3)
    layouts = {apply("grid3x3", img, f"p{i}", FILLERS).tobytes() for i in range(4)}
    assert len(layouts) == 4


def test_uneven_grid_has_one_big_cell() -> None:
    img = _photo(4)
    out = np.asarray(apply("grid-uneven", img, "u", FILLERS))
    assert out.shape[0] == out.shape[1]
    # The big cell crosses one inner gutter each way, so only the outer gutters and one inner
    # gutter span the whole canvas.
    white_cols = (out == 255).all(axis=2).all(axis=0)
    white_rows = (out == 255).all(axis=2).all(axis=1)
    assert white_cols[:3].all() and white_rows[:3].all()
    assert white_cols.sum() < out.shape[1] // 10  # only the outer gutters span the height


def test_captions_add_bars_above_and_below() -> None:
    img = _photo(5)
    out = apply("captions", img, "c")
    assert out.width == img.width and 1.24 * img.height <= out.height <= 1.44 * img.height
    arr = np.asarray(out)
    # The photo itself is untouched somewhere inside; the bars hold text (not one colour).
    top = next(y for y in range(out.height) if np.array_equal(arr[y], np.asarray(img)[0]))
    assert 0.12 * img.height - 1 <= top <= 0.22 * img.height + 1
    assert np.array_equal(arr[top : top + img.height], np.asarray(img))
    assert arr[:top].std() > 5 and arr[top + img.height :].std() > 5


def test_chains_do_what_their_names_say() -> None:
    img = _photo(6)
    w, h = img.size
    mgc = np.asarray(apply("mirror+grey+crop15", img, "m"))
    assert np.array_equal(mgc[:, :, 0], mgc[:, :, 1])  # grey
    assert abs(mgc.shape[0] * mgc.shape[1] / (w * h) - 0.85) < 0.02
    cr = apply("crop20off+rot8", img, "r")
    assert cr.width > round(w * 0.8**0.5)  # rotated with expand: black corners
    assert np.asarray(cr)[0, 0].sum() == 0
    svc = np.asarray(apply("sepia+vignette+captions", img, "s")).astype(np.int16)
    assert svc.shape[0] > h * 1.2
    mid = svc[svc.shape[0] // 2, w // 4 : 3 * w // 4]
    assert (mid[:, 0] >= mid[:, 2]).all()  # sepia: red over blue
    sc = apply("stickers+crop25", img, "k")
    assert abs(sc.width * sc.height / (w * h) - 0.75) < 0.02
    assert (np.asarray(sc) == (250, 204, 21)).all(axis=2).any()


def test_targets() -> None:
    from bench.robustness.transforms import known_abuse_target, protected_target

    assert protected_target("grid3x3-gutter") == 0.90
    assert protected_target("collage2x2") == 0.90
    assert protected_target("grid-uneven") == 0.90
    assert protected_target("grid4x4") == 0.80
    assert protected_target("mirror+grey+crop15") == 0.95
    assert protected_target("rot+10") == 0.95
    assert known_abuse_target("hflip") == known_abuse_target("rot90") == 0.95
    assert known_abuse_target("captions") == known_abuse_target("pad20-blur") == 0.90
    assert known_abuse_target("crop5") == 0.50
    assert known_abuse_target("jpeg50") is None


def test_grid_fillers_are_not_repeated_when_there_are_enough() -> None:
    fillers = [_photo(20 + i) for i in range(15)]
    out = np.asarray(apply("grid4x4", _photo(7), "f", fillers)).astype(np.int16)
    cells = _cells(out, 4, 0)
    for i in range(16):
        for j in range(i + 1, 16):
            assert np.abs(cells[i] - cells[j]).mean() > 5
