"""Which files `protect register` takes from a folder: the pipeline's rule (a media suffix, or
first bytes that sniff as media), not a list of its own."""

from __future__ import annotations

from pathlib import Path

from childguard.protect.organisations import create_organisation
from childguard.protect.register import (
    compute_photo_signature,
    iter_image_files,
    register_photos,
)
from childguard.store import Store
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


def test_two_workers_sign_what_one_does_and_report_each_file(store: Store, tmp_path: Path) -> None:
    album = tmp_path / "album"
    album.mkdir()
    for seed in range(4):
        (album / f"p{seed}.jpg").write_bytes(jpeg_bytes(10 + seed))
    (album / "broken.jpg").write_bytes(b"not a photo")
    signed: list[tuple[str, bool]] = []
    with store.session() as s:
        org = create_organisation(s, "Two Workers", emails=["a@two.example"])
        report = register_photos(
            s, album, org, workers=2, on_signed=lambda p, failed: signed.append((p.name, failed))
        )
        serial = [compute_photo_signature(album / f"p{seed}.jpg") for seed in range(4)]
    assert signed == [("broken.jpg", True)] + [(f"p{seed}.jpg", False) for seed in range(4)]
    assert [p.file_name for p in report.registered] == [f"p{seed}.jpg" for seed in range(4)]
    assert [p.sha256 for p in report.registered] == [r.value("sha256") for r in serial]
    assert [p.pdq for p in report.registered] == [r.value("pdq") for r in serial]
    assert [Path(p).name for p, _ in report.failed] == ["broken.jpg"]
