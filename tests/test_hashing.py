"""The batch engine: records, walking (loops, unreadable folders, zip members), the pool."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from childguard.errors import MediaError
from childguard.media import Limits
from childguard.pipeline import (
    Source,
    hash_bytes,
    hash_file,
    hash_many,
    iter_files,
    pdq_dihedral,
)
from childguard.signals.content import output_fields
from childguard.signals.pdq import PdqSignal, pdq_from_pixels
from test_media import encode, scene


def test_hash_bytes_fills_every_field() -> None:
    data = encode(scene(), "PNG")
    record = hash_bytes(data, path="x.png")
    assert record.ok and record.error is None
    assert record.size == len(data)
    assert record.value("md5") == hashlib.md5(data).hexdigest()
    assert record.value("sha1") == hashlib.sha1(data).hexdigest()
    assert record.value("sha256") == hashlib.sha256(data).hexdigest()
    assert record.value("pdq") == pdq_from_pixels(scene())[0]
    assert record.quality("pdq") is not None and 0 <= record.quality("pdq") <= 100
    assert (record.width, record.height, record.format) == (320, 240, "PNG")
    assert list(record.to_dict()) == list(output_fields())


def test_undecodable_bytes_keep_their_exact_hashes() -> None:
    data = b"definitely not a picture"
    record = hash_bytes(data, path="notes.jpg")
    assert record.error is not None and record.error.startswith("not-an-image")
    assert record.value("sha256") == hashlib.sha256(data).hexdigest()
    assert record.value("pdq") is None


def test_dihedral_variants_are_the_hashes_of_the_rotated_images() -> None:
    pixels = scene(300, 200)
    record = hash_bytes(encode(pixels, "PNG"), dihedral=True)
    variants = pdq_dihedral(record)
    assert variants is not None and len(variants) == 8
    assert variants[0] == record.value("pdq")
    # A rotated copy's plain hash is among the original's dihedral variants.
    rotated = hash_bytes(encode(np.rot90(pixels).copy(), "PNG"))
    assert rotated.value("pdq") is not None
    assert min(PdqSignal.distance(rotated.value("pdq"), v) for v in variants) <= 4


def test_hash_file_reports_missing_and_oversize_files(tmp_path: Path) -> None:
    assert (hash_file(tmp_path / "absent.jpg").error or "").startswith("unreadable")
    big = tmp_path / "big.png"
    big.write_bytes(encode(scene(), "PNG"))
    assert (hash_file(big, limits=Limits(max_bytes=10)).error or "").startswith("too-large")


def _tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "one.png").write_bytes(encode(scene(seed=1), "PNG"))
    (root / "a" / "b" / "two.jpg").write_bytes(encode(scene(seed=2), "JPEG"))
    (root / "top.gif").write_bytes(encode(scene(seed=3), "GIF"))


def test_iter_files_walks_recursively_in_sorted_order(tmp_path: Path) -> None:
    _tree(tmp_path)
    paths = [s.path for s in iter_files([tmp_path])]
    rel = [str(Path(p).relative_to(tmp_path)) for p in paths]
    assert rel == ["a/b/two.jpg", "a/one.png", "top.gif"]


def test_symlink_loops_are_reported_not_followed(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path)
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nowhere.jpg")
    sources = list(iter_files([tmp_path]))
    errors = {Path(s.path).name: s.error for s in sources if s.error}
    assert errors["up"] is not None and errors["up"].startswith("symlink-loop")
    assert errors["dangling.jpg"] is not None and errors["dangling.jpg"].startswith("broken-link")
    assert sum(s.error is None for s in sources) == 3


def test_unreadable_folders_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _tree(tmp_path)
    locked = tmp_path / "a" / "b"
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads anything: make the OS call fail the way it does for other users
        real_scandir = os.scandir

        def scandir(path: os.PathLike[str] | str) -> object:
            if Path(path) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    try:
        sources = list(iter_files([tmp_path]))
    finally:
        locked.chmod(0o755)
    bad = [s for s in sources if s.error]
    assert [Path(s.path) for s in bad] == [locked]
    assert bad[0].error is not None and "unreadable-folder" in bad[0].error
    assert sum(s.error is None for s in sources) == 2


def test_zip_members_are_sources_with_bang_paths(tmp_path: Path) -> None:
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("inner/one.png", encode(scene(seed=5), "PNG"))
        zf.writestr("notes.txt", "hello")  # neither named nor shaped as media: skipped
        zf.writestr("fake.png", "not a picture")  # claims to be one: hashed, and fails
    plain = list(iter_files([archive]))
    assert [s.path for s in plain] == [str(archive)]
    skipped: list[str] = []
    sources = list(
        iter_files([tmp_path], include_archives=True, on_skip=lambda p, _: skipped.append(p))
    )
    assert [s.path for s in sources] == [f"{archive}!fake.png", f"{archive}!inner/one.png"]
    assert skipped == [f"{archive}!notes.txt"]
    records = [hash_many([s], workers=1).__next__() for s in sources]
    assert records[1].ok and records[1].value("pdq") == pdq_from_pixels(scene(seed=5))[0]
    assert (records[0].error or "").startswith("not-an-image")


def test_zip_bomb_members_are_bounded(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.png", b"\x00" * 2_000_000)
    assert archive.stat().st_size < 20_000
    (source,) = iter_files([archive], include_archives=True)
    with pytest.raises(MediaError) as err:
        source.read(Limits(max_bytes=100_000))
    assert err.value.reason == "too-large"


def test_corrupt_zip_is_one_error_record(tmp_path: Path) -> None:
    bad = tmp_path / "broken.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    (source,) = iter_files([bad], include_archives=True)
    assert source.error is not None and source.error.startswith("bad-archive")


def test_pool_gives_the_serial_results_in_input_order(tmp_path: Path) -> None:
    for i in range(12):
        (tmp_path / f"{i:02d}.png").write_bytes(encode(scene(seed=i), "PNG"))
    (tmp_path / "05-bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    sources = list(iter_files([tmp_path, tmp_path / "missing"]))
    serial = list(hash_many(sources, workers=1))
    pooled = list(hash_many(sources, workers=2))
    assert [r.to_dict() for r in pooled] == [r.to_dict() for r in serial]
    assert [r.path for r in pooled] == [s.path for s in sources]
    assert sum(not r.ok for r in pooled) == 2


@dataclass(frozen=True)
class CrashingSource(Source):
    """A source whose read kills the worker process, as a decoder segfault would."""

    def read(self, limits: Limits = Limits()) -> bytes:
        os._exit(3)


def test_a_worker_crash_costs_only_its_item(tmp_path: Path) -> None:
    good = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        path.write_bytes(encode(scene(seed=i), "PNG"))
        good.append(Source(path=str(path), file=path))
    sources = [good[0], good[1], CrashingSource(path="crash", file=tmp_path), good[2], good[3]]
    records = list(hash_many(sources, workers=2))
    assert [r.path for r in records] == [s.path for s in sources]
    assert [r.ok for r in records] == [True, True, False, True, True]
    assert (records[2].error or "").startswith("worker-crashed")


def test_real_photo_record(real_photos: list[Path]) -> None:
    photo = real_photos[0]
    record = hash_file(photo)
    with Image.open(io.BytesIO(photo.read_bytes())) as img:
        assert (record.width, record.height) == img.size
    assert record.ok and record.format == "JPEG" and record.quality("pdq") == 100
