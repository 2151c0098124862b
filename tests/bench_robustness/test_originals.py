"""The originals check: photos registered from their full-size files are found in re-posts
queried from bytes, grids included, and the report says how many and at what cost."""

from __future__ import annotations

import re
from pathlib import Path

from bench.robustness.originals import run


def test_registered_originals_are_found_in_reposts_and_grids(
    photos_dir: Path, real_photos: list[Path]
) -> None:
    text = run(["jpeg75", "grid3x3"], 640, photos_dir)
    rows = dict(re.findall(r"^\| (\S+) \| (\d+/\d+ \| \d+) \|$", text, re.M))
    assert set(rows) == {"jpeg75", "grid3x3"}
    for transform, cell in rows.items():
        found, false = cell.split(" | ")
        got, total = map(int, found.split("/"))
        assert total == (len(real_photos) + 1) // 2
        assert got >= total - 2, (transform, cell)  # a smooth wallpaper has too few corners
        assert false == "0", (transform, cell)
    assert re.search(r"\d+\.\dx plain hashing of the same bytes", text)
