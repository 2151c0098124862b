"""Distractor tiles: the grid, the parent rule, the filters, reuse, and how the FPR run picks."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from bench.robustness.corpus import Photo
from bench.robustness.tiles import (
    TILE_MIN,
    TILE_PACKAGE,
    Tile,
    as_photo,
    build_tiles,
    cut_tiles,
    photo_pixels,
    select_tiles,
    tile_boxes,
)
from PIL import Image

from childguard.signals.pdq import pdq_from_pixels

SCRATCH = "pkgs/scratch/usr/share/scratch/Media/Backgrounds"


def _png(seed: int, size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(small).resize(size, Image.Resampling.BICUBIC).save(buf, "PNG")
    return buf.getvalue()


def _photo(i: int, data: bytes, split: str, path: str = "") -> Photo:
    with Image.open(io.BytesIO(data)) as img:
        pdq, quality = pdq_from_pixels(np.asarray(img.convert("RGB")))
    return Photo(
        id=f"scratch-{i}",
        group="general",
        package="scratch",
        version="1",
        path=path or f"x{i}.png",
        licence="x",
        source_sha256=hashlib.sha256(data).hexdigest(),
        prepared_sha256="y",
        pdq=pdq,
        quality=quality,
        split=split,
    )


@pytest.mark.parametrize(
    ("size", "group", "count"),
    [((5120, 2880), "general", 7 * 4), ((1024, 768), "general", 4 * 3), ((700, 500), "general", 0)],
)
def test_tile_grid(size: tuple[int, int], group: str, count: int) -> None:
    boxes = tile_boxes(*size, group)
    assert len(boxes) == count
    side = max(TILE_MIN[group], min(size) // 4)
    cover = np.zeros(size[::-1], np.uint8)
    for x0, y0, x1, y1 in boxes:
        assert x1 - x0 == y1 - y0 == side
        assert x0 >= 0 and y0 >= 0 and x1 <= size[0] and y1 <= size[1]
        cover[y0:y1, x0:x1] += 1
    assert cover.max() <= 1  # no overlap


def test_astro_tiles_of_a_512_photo() -> None:
    assert len(tile_boxes(512, 512, "astro")) == 16
    assert tile_boxes(240, 240, "astro") == []


def test_only_distractors_are_cut_and_tiles_record_their_parent() -> None:
    data = _png(1, (1024, 768))
    with pytest.raises(ValueError, match="only distractors"):
        cut_tiles(data, _photo(1, data, "registered"))
    parent = _photo(1, data, "distractor")
    tiles = cut_tiles(data, parent)
    assert len(tiles) == 12
    src = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)
    for tile, jpeg in tiles:
        assert tile.parent == parent.id and tile.parent_source_sha256 == parent.source_sha256
        x0, y0, x1, y1 = tile.box
        got = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.int16)
        assert got.shape == (y1 - y0, x1 - x0, 3)
        assert np.abs(got - src[y0:y1, x0:x1]).mean() < 3  # JPEG 95 of that very box


def test_build_tiles_filters_reuses_and_reverifies(tmp_path: Path) -> None:
    folder = tmp_path / SCRATCH
    folder.mkdir(parents=True)
    dis_data, reg_data = _png(2, (1024, 768)), _png(3, (1024, 512))
    flat = Image.new("RGB", (1024, 768), (90, 120, 200))
    buf = io.BytesIO()
    flat.save(buf, "PNG")
    flat_data = buf.getvalue()
    # A registered photo that is one tile of the distractor (a wallpaper shipped twice).
    with Image.open(io.BytesIO(dis_data)) as img:
        box = tile_boxes(1024, 768, "general")[5]
        dup = img.convert("RGB").crop(box).resize((512, 512))
    buf = io.BytesIO()
    dup.save(buf, "PNG")
    dup_data = buf.getvalue()
    for name, data in (("d.png", dis_data), ("r.png", reg_data), ("f.png", flat_data)):
        (folder / name).write_bytes(data)
    photos = [
        _photo(1, dis_data, "distractor", "d.png"),
        _photo(2, reg_data, "registered", "r.png"),
        _photo(3, flat_data, "distractor", "f.png"),
        _photo(4, dup_data, "registered", "dup.png"),
    ]
    kept = build_tiles(photos, tmp_path, log=lambda _m: None)
    manifest = json.loads((tmp_path / "tiles" / "tiles.json").read_text())["tiles"]
    assert {t["parent"] for t in manifest} == {"scratch-1", "scratch-3"}  # never a registered
    assert {t.parent for t in kept} == {"scratch-1"}  # the flat photo's tiles are dropped
    assert len(kept) == 11 and f"scratch-1-t{5:02d}" not in {t.id for t in kept}
    # Reused as they are; a tampered tile has its parent cut again.
    victim = kept[0].prepared_path(tmp_path)
    again = build_tiles(photos, tmp_path, log=lambda _m: None)
    assert [t.id for t in again] == [t.id for t in kept]
    victim.write_bytes(b"not a jpeg")
    third = build_tiles(photos, tmp_path, log=lambda _m: None)
    assert [t.prepared_sha256 for t in third] == [t.prepared_sha256 for t in kept]
    assert hashlib.sha256(victim.read_bytes()).hexdigest() == kept[0].prepared_sha256
    as_distractor = as_photo(kept[0])
    assert as_distractor.package == TILE_PACKAGE and as_distractor.split == "distractor"
    assert photo_pixels(as_distractor, tmp_path).shape[:2] == (256, 256)


def test_select_tiles_spreads_over_parents() -> None:
    tiles = [
        Tile(
            id=f"{p}-t{i:02d}",
            parent=p,
            group="general",
            parent_source_sha256="s",
            box=(0, 0, 1, 1),
        )
        for p in ("a", "b", "c")
        for i in range(4)
    ]
    picked = select_tiles(tiles, {"a", "b"}, 5)
    assert [t.id for t in picked] == ["a-t00", "b-t00", "a-t01", "b-t01", "a-t02"]
    assert len(select_tiles(tiles, {"a", "b", "c"}, 100)) == 12
    assert select_tiles(tiles, {"a"}, 0) == []
