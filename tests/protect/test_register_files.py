"""Which files `protect register` takes from a folder: the pipeline's rule (a media suffix, or
first bytes that sniff as media), not a list of its own."""

from __future__ import annotations

from pathlib import Path

from childguard.protect.register import iter_image_files
from sample_media import jpeg_bytes


def test_a_folder_gives_its_media_by_name_or_by_content(tmp_path: Path) -> None:
    album = tmp_path / "album"
    (album / "day two").mkdir(parents=True)
    (album / "a.jpg").write_bytes(jpeg_bytes(1))
    (album / "day two" / "B.JPEG").write_bytes(jpeg_bytes(2))
    (album / "scan-0001").write_bytes(jpeg_bytes(3))  # a photo saved without a suffix
    (album / "claims.png").write_bytes(b"not an image")  # claims a suffix: taken, fails later
    (album / "manifest.csv").write_text("file,title\na.jpg,Camp\n")
    (album / "notes.txt").write_text("bring tents")
    (album / ".hidden.jpg").write_bytes(jpeg_bytes(4))
    found = [p.relative_to(album).as_posix() for p in iter_image_files(album)]
    assert found == ["a.jpg", "claims.png", "day two/B.JPEG", "scan-0001"]
    assert list(iter_image_files(album / "notes.txt")) == [album / "notes.txt"]
