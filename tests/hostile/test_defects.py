"""The defects of issue 21 in media, hashing and the file sources, each against the real
pipeline (and the real CLI in a subprocess where a hang or a traceback is the defect)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from childguard.media import DEFAULT_LIMITS, decode_image
from childguard.pipeline import Source, hash_bytes, hash_many, iter_files
from childguard.pipeline.sources import display_path
from hostile.media_gen import (
    jpeg_header_lie,
    many_page_tiff,
    nested_zip,
    photo,
    png16_bomb,
    png_claiming,
)

CHILDGUARD = [str(Path(sys.executable).with_name("childguard"))]
EXACT = ("md5", "sha1", "sha256")


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [*CHILDGUARD, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


# -- pixel limit, memory and time budgets ---------------------------------------------------


def test_pixel_limit_in_force_is_the_documented_120_megapixels() -> None:
    assert DEFAULT_LIMITS.max_pixels == 120_000_000
    under = hash_bytes(png_claiming(10_000, 10_000))  # 100 MP: over Pillow's 89.5 MP default
    assert under.error is None or not under.error.startswith("too-many-pixels"), under.error
    over = hash_bytes(png_claiming(11_000, 11_000))  # 121 MP
    assert over.error is not None and over.error.startswith("too-many-pixels")
    assert all(over.value(t) for t in EXACT)


def test_16_bit_png_bomb_stays_within_the_memory_budget(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    path.write_bytes(png16_bomb())
    # The peak is the process's own high-water mark (VmHWM). ru_maxrss would not do: Linux
    # carries the spawning pytest worker's RSS into a child's ru_maxrss across exec.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from childguard.pipeline import hash_file\n"
        "r = hash_file(Path(sys.argv[1]), robust=True)\n"
        "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
        "print(r.error, r.width, hwm.split()[1])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120
    )
    error, width, peak_kib = out.stdout.split()
    assert (error, width) == ("None", "9400")
    assert int(peak_kib) < 1024 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB, budget 1 GiB"


def test_tiff_of_50000_pages_costs_one_page() -> None:
    started = time.monotonic()
    record = hash_bytes(many_page_tiff(50_000))
    assert record.error is None and record.value("pdq")
    assert time.monotonic() - started < 10


def test_time_budget_stops_a_slow_file_and_keeps_its_exact_hashes(tmp_path: Path) -> None:
    from dataclasses import replace

    from childguard.pipeline import HashOptions, hash_source

    path = tmp_path / "big.jpg"
    path.write_bytes(photo(1, (2000, 1500)))
    options = HashOptions(robust=True, limits=replace(DEFAULT_LIMITS, file_seconds=0.001))
    record = hash_source(Source(path=str(path), file=path), options)
    assert record.error is not None and record.error.startswith("timeout")
    assert all(record.value(t) for t in EXACT)


# -- truncation and padding -------------------------------------------------------------------


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_header_claiming_more_than_its_stream_is_truncated_not_padded(
    progressive: bool,
) -> None:
    data = photo(3, (640, 480), "JPEG", progressive=progressive, quality=90)
    record = hash_bytes(jpeg_header_lie(data))
    assert record.error is not None and record.error.startswith("truncated"), record.error
    assert record.value("pdq") is None
    assert all(record.value(t) for t in EXACT)


@pytest.mark.parametrize("progressive", [False, True])
def test_flat_large_jpeg_is_not_mistaken_for_a_header_lie(progressive: bool) -> None:
    buf = io.BytesIO()
    Image.new("L", (4000, 4000), 128).save(buf, "JPEG", optimize=True, progressive=progressive)
    assert decode_image(buf.getvalue()).width == 4000


# -- a decoder or stage failure never costs the exact hashes -----------------------------------


@pytest.mark.parametrize("size", [(12_000, 20), (20, 9_000), (17, 17), (1, 1)])
def test_extreme_shapes_keep_every_hash_with_features(size: tuple[int, int]) -> None:
    rng = np.random.default_rng(2)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    record = hash_bytes(buf.getvalue(), robust=True, features=True)
    assert record.error is None, record.error
    assert all(record.value(t) for t in (*EXACT, "pdq"))


def test_undecodable_avif_keeps_its_exact_hashes() -> None:
    junk = b"\x00\x00\x00\x1cftypavif" + b"\x00" * 20 + bytes(range(256)) * 8
    record = hash_bytes(junk)
    assert record.error is not None
    assert all(record.value(t) for t in EXACT)


class _Exploding(Source):
    def content(self, limits=DEFAULT_LIMITS):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug, not bad input")


def test_one_failing_item_does_not_abort_a_serial_batch(tmp_path: Path) -> None:
    good = tmp_path / "a.jpg"
    good.write_bytes(photo(4))
    sources = [_Exploding(path="boom", file=good), Source(path=str(good), file=good)]
    records = list(hash_many(sources, workers=1))
    assert [r.path for r in records] == ["boom", str(good)]
    assert records[0].error is not None and "internal-error" in records[0].error
    assert records[1].error is None


# -- special files, names -----------------------------------------------------------------------


def test_fifo_and_link_to_dev_zero_get_a_record_and_are_never_read(tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    folder.mkdir()
    os.mkfifo(folder / "pipe.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "ok.jpg").write_bytes(photo(5))
    os.mkfifo(tmp_path / "named-pipe")
    run = _cli(
        "hash",
        str(tmp_path / "named-pipe"),
        "/dev/zero",
        str(folder),
        "--workers",
        "1",
        timeout=60,
    )
    assert "Traceback" not in run.stderr
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    by_name = {Path(r["path"]).name: r for r in rows}
    assert sorted(by_name) == ["named-pipe", "ok.jpg", "pipe.jpg", "zero", "zero.jpg"]
    for name in ("named-pipe", "zero", "pipe.jpg", "zero.jpg"):
        assert by_name[name]["error"].startswith("not-a-file"), by_name[name]
    assert by_name["ok.jpg"].get("error") is None


def test_name_that_is_not_utf8_does_not_stop_hash_out(tmp_path: Path) -> None:
    folder = tmp_path / "names"
    folder.mkdir()
    for raw in (b"a.jpg", b"b\xff\xfe.jpg", b"c.jpg"):
        (Path(os.fsdecode(bytes(folder) + b"/" + raw))).write_bytes(photo(len(raw)))
    out = tmp_path / "out.jsonl"
    run = _cli("hash", str(folder), "--out", str(out), "--workers", "1")
    assert "Traceback" not in run.stderr, run.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["a.jpg", "b\\xff\\xfe.jpg", "c.jpg"]
    assert all(r.get("error") is None for r in rows)
    assert display_path(os.fsdecode(b"x\xffy")) == "x\\xffy"


# -- zips ----------------------------------------------------------------------------------------


def test_zip_members_with_the_same_name_are_each_hashed(tmp_path: Path) -> None:
    archive = tmp_path / "twice.zip"
    with zipfile.ZipFile(archive, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": the point here
        zf.writestr("photo.jpg", photo(11))
        zf.writestr("photo.jpg", photo(12))
    records = list(hash_many(iter_files([archive], include_archives=True), workers=1))
    assert [r.path for r in records] == [f"{archive}!photo.jpg", f"{archive}!photo.jpg#2"]
    assert records[0].value("md5") != records[1].value("md5")
    assert {r.value("md5") for r in records} == {
        hash_bytes(photo(11)).value("md5"),
        hash_bytes(photo(12)).value("md5"),
    }


def test_zips_inside_zips_are_opened_to_the_depth_budget(tmp_path: Path) -> None:
    archive = tmp_path / "outer.zip"
    archive.write_bytes(nested_zip(3, photo(13)))
    [record] = hash_many(iter_files([archive], include_archives=True), workers=1)
    assert record.path == f"{archive}!level2.zip!level3.zip!photo.jpg"
    assert record.value("md5") == hash_bytes(photo(13)).value("md5")
    assert record.value("pdq")
    deep = tmp_path / "deep.zip"
    deep.write_bytes(nested_zip(8, photo(13)))
    [too_deep] = hash_many(iter_files([deep], include_archives=True), workers=1)
    assert too_deep.error is not None and too_deep.error.startswith("archive-too-deep")


def test_zip_of_5000_members_is_read_in_linear_time(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    member = photo(14, (16, 16), "PNG")
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5000):
            zf.writestr(f"m/{i:05d}.png", member)
    started = time.monotonic()
    sources = list(iter_files([archive], include_archives=True))
    assert len(sources) == 5000
    assert all(len(s.read()) == len(member) for s in sources)
    assert time.monotonic() - started < 8  # quadratic reading took about a minute
