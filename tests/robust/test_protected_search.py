"""The protected search on grids, combined edits and cheap passes (`ProtectedIndex.search`)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from tests.robust.conftest import synthetic_photo
from tests.robust.grids import make_grid

from childguard.robust.protected import ProtectedIndex
from childguard.robust.query_features import QueryFeatures, query_features
from childguard.robust.signature import compute_signature

# Registered photos: portrait and landscape, as organisations publish them.
SIZES = [(640, 480), (480, 640), (600, 400), (400, 600), (640, 480), (480, 640)]


@pytest.fixture(scope="module")
def registered() -> list[np.ndarray]:
    return [synthetic_photo(300 + i, size) for i, size in enumerate(SIZES)]


@pytest.fixture(scope="module")
def index(registered: list[np.ndarray]) -> ProtectedIndex:
    index = ProtectedIndex()
    for i, px in enumerate(registered):
        index.add(f"p{i}", compute_signature(px))
    return index


def _fillers(count: int, seed: int = 500) -> list[np.ndarray]:
    return [synthetic_photo(seed + i, SIZES[i % len(SIZES)]) for i in range(count)]


def _best(index: ProtectedIndex, pixels: np.ndarray) -> str | None:
    hits = index.search(query_features(pixels))
    return hits[0].photo if hits and hits[0].match else None


@pytest.mark.parametrize(
    "n,gutter,slot,photo,off",
    [
        (2, 0, 3, 1, 0.5),
        (3, 0, 4, 2, 0.0),
        (3, 9, 7, 3, 1.0),
        (4, 0, 9, 0, 0.5),
        (4, 9, 14, 5, 0.2),
    ],
)
def test_a_photo_square_cropped_into_a_grid_cell_is_found(
    index: ProtectedIndex,
    registered: list[np.ndarray],
    n: int,
    gutter: int,
    slot: int,
    photo: int,
    off: float,
) -> None:
    cells = _fillers(n * n)
    cells[slot] = registered[photo]
    offsets = [0.5] * (n * n)
    offsets[slot] = off
    pixels, _ = make_grid(n, gutter=gutter, photos=cells, offsets=offsets)
    q = query_features(pixels)
    assert q.is_grid() and len(q.regions()) == n * n
    assert _best(index, pixels) == f"p{photo}"


def test_a_grid_of_other_photos_matches_nothing(index: ProtectedIndex) -> None:
    for n, gutter in ((3, 0), (4, 9)):
        pixels, _ = make_grid(n, gutter=gutter, photos=_fillers(n * n, seed=700))
        assert _best(index, pixels) is None


def test_mirror_grey_and_an_off_centre_crop_together_are_found(
    index: ProtectedIndex, registered: list[np.ndarray]
) -> None:
    for i in (0, 3):
        img = ImageOps.mirror(Image.fromarray(registered[i])).convert("L").convert("RGB")
        w, h = img.size
        s = 0.85**0.5  # 15% of the area off, aspect kept, in a corner
        out = img.crop((w - round(w * s), 0, w, round(h * s)))
        assert _best(index, np.asarray(out)) == f"p{i}"


def test_cells_travel_without_pixels(index: ProtectedIndex, registered: list[np.ndarray]) -> None:
    """Features computed where the pixels were (a hashing worker) keep the cells as regions."""
    cells = _fillers(9)
    cells[5] = registered[4]
    pixels, _ = make_grid(3, gutter=0, photos=cells)
    full = query_features(pixels)
    travelled = QueryFeatures(
        [],
        keypoints=full.keypoints,
        descriptors=full.descriptors,
        regions=[
            QueryFeatures([], keypoints=r.keypoints, descriptors=r.descriptors)
            for r in full.regions()
        ],
    )
    assert travelled.is_grid()
    hits = index.search(travelled)
    assert hits and hits[0].match and hits[0].photo == "p4"


def test_voted_many_counts_as_voted_does(
    index: ProtectedIndex, registered: list[np.ndarray]
) -> None:
    queries = [query_features(px) for px in registered[:3]]
    many = index.voted_many(queries, votes=2)
    assert [[p for p, _ in v] for v in many] == [index.voted(q, votes=2) for q in queries]
    assert [v[0][0] for v in many] == ["p0", "p1", "p2"]
    assert all(v[0][1] > 0 for v in many)
