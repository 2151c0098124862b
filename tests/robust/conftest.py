"""Synthetic photo-like images for the robust-matching tests."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw


def synthetic_photo(seed: int, size: tuple[int, int] = (480, 360)) -> np.ndarray:
    """Smooth colour field plus random shapes: PDQ quality is high and ORB finds corners."""
    rng = np.random.default_rng(seed)
    base = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)).resize(
        size, Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(base)
    w, h = size
    for _ in range(40):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(6, max(7, w // 8)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + r, y + int(r * rng.uniform(0.5, 1.5))), fill=colour)
        else:
            draw.ellipse((x, y, x + r, y + r), fill=colour, outline=(0, 0, 0))
    return np.asarray(base)


@pytest.fixture(scope="module")
def photos() -> list[np.ndarray]:
    return [synthetic_photo(s) for s in range(6)]


@pytest.fixture(scope="module")
def make_photo() -> object:
    return synthetic_photo


def star_sky(seed: int, side: int = 600) -> np.ndarray:
    """A dark sky with 400 faint to bright stars: corners only at the usual-to-low FAST levels."""
    rng = np.random.default_rng(seed)
    sky = rng.normal(10, 2, (side, side))
    star = np.array([[0.3, 0.6, 0.3], [0.6, 1.0, 0.6], [0.3, 0.6, 0.3]])
    for x, y in rng.integers(5, side - 5, (400, 2)):
        sky[y - 1 : y + 2, x - 1 : x + 2] += rng.uniform(15, 120) * star
    grey = sky.clip(0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.stack([grey, grey, grey], axis=2))
