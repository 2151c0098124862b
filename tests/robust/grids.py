"""Synthetic grids and collages for the grid-detection and protected-search tests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image
from tests.robust.conftest import synthetic_photo

from childguard.robust.grid import Box


def square(photo: np.ndarray, off: float) -> Image.Image:
    """The largest square of the photo, `off` (0..1) of the way along its long side."""
    img = Image.fromarray(photo)
    w, h = img.size
    side = min(w, h)
    o = round(off * (max(w, h) - side))
    return img.crop((o, 0, o + side, side)) if w >= h else img.crop((0, o, side, o + side))


def make_grid(
    n: int,
    *,
    gutter: int,
    colour: tuple[int, int, int] = (255, 255, 255),
    side: int = 1080,
    photos: Sequence[np.ndarray] | None = None,
    offsets: Sequence[float] | None = None,
) -> tuple[np.ndarray, list[Box]]:
    """An n x n grid of square-cropped photos and its true cell boxes. `photos` fill the
    cells in reading order (synthetic portrait and landscape photos by default); `offsets`
    place each square crop along its photo's long side (0: start, 1: end)."""
    cell = (side - (n + 1) * gutter) // n
    total = n * cell + (n + 1) * gutter
    canvas = Image.new("RGB", (total, total), colour)
    boxes = []
    for k in range(n * n):
        size = (480, 360) if k % 2 else (360, 480)
        photo = photos[k] if photos is not None else synthetic_photo(100 + k, size)
        off = offsets[k] if offsets is not None else (k % 3) / 2
        tile = square(photo, off).resize((cell, cell), Image.Resampling.BILINEAR)
        x, y = gutter + (k % n) * (cell + gutter), gutter + (k // n) * (cell + gutter)
        canvas.paste(tile, (x, y))
        boxes.append(Box(x, y, x + cell, y + cell))
    return np.asarray(canvas), boxes


def make_uneven(side: int = 1080, gutter: int = 7) -> tuple[np.ndarray, list[Box]]:
    """A 3x3 layout with one big 2x2 cell top left and five small cells, white gutters."""
    cell = (side - 4 * gutter) // 3
    total = 3 * cell + 4 * gutter
    canvas = Image.new("RGB", (total, total), (255, 255, 255))
    slots = [(0, 0, 2 * cell + gutter)] + [
        (cx, cy, cell) for cy in range(3) for cx in range(3) if cx == 2 or cy == 2
    ]
    boxes = []
    for k, (cx, cy, size) in enumerate(slots):
        tile = square(synthetic_photo(200 + k), 0.5).resize((size, size))
        x, y = gutter + cx * (cell + gutter), gutter + cy * (cell + gutter)
        canvas.paste(tile, (x, y))
        boxes.append(Box(x, y, x + size, y + size))
    return np.asarray(canvas), boxes
