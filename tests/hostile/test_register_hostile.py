"""One bad photo never stops `protect register`: the rest are registered, the bad ones are listed
with their reason (issue 21)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from childguard.protect.organisations import create_organisation
from childguard.protect.register import register_photos
from childguard.store import Store
from hostile.media_gen import photo


def _png(size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(size[0] * 7 + size[1])
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_register_goes_on_past_photos_it_cannot_sign(store: Store, tmp_path: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    (album / "good.jpg").write_bytes(photo(41, (640, 480)))
    (album / "tiny.png").write_bytes(_png((8, 8)))
    (album / "sliver.png").write_bytes(_png((12_000, 20)))
    (album / "junk.avif").write_bytes(b"\x00\x00\x00\x1cftypavif" + bytes(range(256)) * 8)
    with store.session() as s:
        org = create_organisation(s, "Hostile Example", emails=["a@hostile.example"])
        report = register_photos(s, album, org)
    assert [p.file_name for p in report.registered] == ["good.jpg"]
    assert sorted(Path(p).name for p, _ in report.failed) == ["junk.avif", "sliver.png", "tiny.png"]
