"""Grid and collage detection (`childguard.robust.grid`) on synthetic grids of synthetic photos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from tests.robust.conftest import synthetic_photo
from tests.robust.grids import make_grid, make_uneven
from tests.sample_media import jpeg_bytes

from childguard.robust.grid import Box, detect_grid, grid_cells


def _near(found: list[Box], truth: list[Box], tol: int) -> bool:
    """Every true cell has a found cell within `tol` pixels on each side, and no more cells."""
    if len(found) != len(truth):
        return False
    for t in truth:
        if not any(
            max(abs(f.x0 - t.x0), abs(f.y0 - t.y0), abs(f.x1 - t.x1), abs(f.y1 - t.y1)) <= tol
            for f in found
        ):
            return False
    return True


def _jpeg(pixels: np.ndarray, quality: int = 80) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize(
    "gutter,colour", [(0, (255, 255, 255)), (9, (255, 255, 255)), (9, (0, 0, 0))]
)
def test_grids_with_and_without_gutters_give_their_cells(
    n: int, gutter: int, colour: tuple[int, int, int]
) -> None:
    pixels, truth = make_grid(n, gutter=gutter, colour=colour)
    grid = detect_grid(pixels)
    assert grid is not None
    assert (grid.rows, grid.cols) == (n, n)
    assert grid.kind == ("seams" if gutter == 0 else "gutters")
    # Cells come back in the input's coordinates, within a few pixels of the true ones.
    assert _near(grid.cells, truth, tol=8)
    # Reading order: top to bottom, then left to right.
    assert grid.cells == sorted(grid.cells, key=lambda b: (b.y0 // 20, b.x0))


def test_recompressed_and_downscaled_grids_are_still_found() -> None:
    pixels, truth = make_grid(3, gutter=0)
    small = np.asarray(Image.fromarray(_jpeg(pixels, 70)).resize((600, 600)))
    grid = detect_grid(small)
    assert grid is not None and (grid.rows, grid.cols) == (3, 3)
    assert _near(grid.cells, [b.scaled(600 / pixels.shape[1]) for b in truth], tol=6)


def test_an_uneven_collage_gives_its_big_and_small_cells() -> None:
    pixels, truth = make_uneven()
    grid = detect_grid(pixels)
    assert grid is not None and grid.kind == "uneven"
    assert _near(grid.cells, truth, tol=8)
    assert max(b.area for b in grid.cells) > 3.5 * min(b.area for b in grid.cells)


def test_plain_photos_are_no_grid() -> None:
    plain = [synthetic_photo(s, size) for s in range(8) for size in ((480, 360), (360, 480))]
    plain += [np.asarray(Image.open(io.BytesIO(jpeg_bytes(s))).convert("RGB")) for s in (1, 2)]
    # A photo of one flat colour with a frame around it is not a grid either.
    framed = np.full((400, 400, 3), 255, np.uint8)
    framed[20:380, 20:380] = synthetic_photo(9, (360, 360))
    plain.append(framed)
    assert [i for i, px in enumerate(plain) if detect_grid(px) is not None] == []
    assert grid_cells(plain[0]) == []


def test_tiny_or_grey_input() -> None:
    assert detect_grid(np.zeros((20, 20, 3), np.uint8)) is None
    with pytest.raises(ValueError):
        detect_grid(np.zeros((64, 64), np.uint8))
