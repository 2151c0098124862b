"""The check before publishing: finds GPS, serials, owner names and dates; strips them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from childguard.errors import MediaError
from childguard.protect.prepublish import check_before_publishing, write_stripped_copy
from sample_media import exif_photo


def test_identifying_exif_is_flagged(tmp_path: Path) -> None:
    report = check_before_publishing(exif_photo(tmp_path / "p.jpg"))
    by_field = {f.field: f for f in report.findings}
    assert report.has_location and not report.clean
    assert by_field["GPS"].value == "51.05000, 3.72500"
    assert by_field["BodySerialNumber"].value == "SN-0042-XYZ"
    assert by_field["BodySerialNumber"].severity == "high"
    assert by_field["CameraOwnerName"].category == "owner"
    assert by_field["Artist"].value == "Jane Leader"
    assert by_field["DateTimeOriginal"].category == "date"


@pytest.mark.parametrize("orientation", [1, 6])
def test_stripped_copy_has_no_metadata_and_same_picture(tmp_path: Path, orientation: int) -> None:
    src = exif_photo(tmp_path / "p.jpg", orientation)
    out = tmp_path / "clean.jpg"
    report = write_stripped_copy(src, out)
    assert report.clean, report.findings
    assert Image.open(out).getexif() == {} or dict(Image.open(out).getexif()) == {}
    original = np.asarray(Image.open(src).convert("RGB"), dtype=np.int16)
    if orientation == 6:
        original = np.rot90(original, -1)
    cleaned = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    assert cleaned.shape == original.shape
    assert np.abs(cleaned - original).mean() < 3
    assert b"Jane" not in out.read_bytes() and b"SN-0042" not in out.read_bytes()
    with pytest.raises(FileExistsError):
        write_stripped_copy(src, out)
    with pytest.raises(ValueError):
        write_stripped_copy(src, src, overwrite=True)


def test_png_text_chunks_flagged_and_stripped(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Leader")
    src = tmp_path / "p.png"
    Image.new("RGB", (50, 40), (10, 200, 30)).save(src, pnginfo=info)
    assert [f.field for f in check_before_publishing(src).findings] == ["Author"]
    out = tmp_path / "c.png"
    assert write_stripped_copy(src, out).clean
    assert b"Jane" not in out.read_bytes()


def test_clean_photo_and_bad_input(tmp_path: Path) -> None:
    p = tmp_path / "plain.png"
    Image.new("RGB", (30, 30)).save(p)
    assert check_before_publishing(p).clean
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"hello")
    with pytest.raises(MediaError):
        check_before_publishing(bad)
