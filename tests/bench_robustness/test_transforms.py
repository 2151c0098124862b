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
