"""The DC-only progressive JPEG kernel (`childguard._jpegdc`) and its use in the fast path.

Reference: Pillow's full decode, then the mean of every 8x8 block (edge blocks padded by
replication, as JPEG encoders pad). The kernel reads only the DC scans, so it sees the block
means before the IDCT clamps pixels to 0..255 and with chroma interpolated from block means;
the bound, a mean of 3 levels, allows for that (measured: <= 1.1 on synthetic images of
at least 64x64, 2.2 on a 9x17 one where every block is an edge block, <= 2.7 on the
real photos).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from childguard import media
from childguard._jpegdc import decode_dc
from childguard.errors import MediaError
from childguard.signals.pdq import PdqSignal, pdq_from_pixels

NO_LIMIT = 10**12


def block_means(data: bytes) -> np.ndarray:
    rgb = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    hh, ww = -(-h // 8) * 8, -(-w // 8) * 8
    padded = np.pad(rgb, ((0, hh - h), (0, ww - w), (0, 0)), mode="edge")
    return padded.reshape(hh // 8, 8, ww // 8, 8, 3).mean(axis=(1, 3))


def smooth_picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """Slow waves in 40..216 plus noise: no pixel is clipped, and chroma is smooth enough for
    block-mean interpolation (at most ~1.6 levels per pixel)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [
        128 + 60 * np.sin(x / 40 + seed),
        128 + 60 * np.cos(y / 37),
        128 + 60 * np.sin((x + y) / 53),
    ]
    base = np.stack(channels, axis=-1) + rng.integers(-20, 21, (height, width, 3))
    return Image.fromarray(base.clip(0, 255).astype(np.uint8))


def shapes_picture(width: int, height: int, seed: int) -> Image.Image:
    """Random filled ellipses and rectangles: a picture with structure, for PDQ."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height), (90, 120, 150))
    draw = ImageDraw.Draw(img)
    for _ in range(40):
        x0, x1 = sorted(int(v) for v in rng.integers(0, width, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(0, height, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x0, y0, x1, y1), fill=colour)
    return img


def progressive_jpeg(img: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", progressive=True, **options)
    return buf.getvalue()


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["444", "422", "420"])
@pytest.mark.parametrize("mode", ["RGB", "L"])
@pytest.mark.parametrize("restart", [0, 3], ids=["no-restart", "restart"])
@pytest.mark.parametrize("size", [(203, 157), (64, 64), (9, 17)])
def test_block_means_of_synthetic_progressive_jpegs(
    subsampling: int, mode: str, restart: int, size: tuple[int, int]
) -> None:
    options: dict[str, object] = {"quality": 90, "subsampling": subsampling}
    if restart:
        options["restart_marker_blocks"] = restart
    data = progressive_jpeg(smooth_picture(*size).convert(mode), **options)
    assert (b"\xff\xdd" in data) == bool(restart)  # a DRI marker really is there
    out = decode_dc(data, NO_LIMIT)
    assert out is not None
    expected = block_means(data)
    assert out.shape == expected.shape == (-(-size[1] // 8), -(-size[0] // 8), 3)
    assert out.dtype == np.uint8
    diff = np.abs(out.astype(np.float64) - expected)
    assert diff.mean() <= 3.0
    assert diff.max() <= 12


def test_block_means_of_real_progressive_photos(real_photos: list[Path]) -> None:
    checked = 0
    for path in real_photos:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as img:
            progressive = bool(img.info.get("progressive"))
        out = decode_dc(data, NO_LIMIT)
        if not progressive:
            assert out is None, f"{path.name}: baseline JPEGs are left to Pillow"
            continue
        assert out is not None, path.name
        diff = np.abs(out.astype(np.float64) - block_means(data))
        assert diff.mean() <= 3.0, f"{path.name}: mean difference {diff.mean():.2f}"
        checked += 1
    assert checked >= 10


def test_unsupported_or_damaged_files_give_none() -> None:
    picture = smooth_picture(120, 80)
    good = progressive_jpeg(picture, quality=90)
    assert decode_dc(good, NO_LIMIT) is not None
    baseline = io.BytesIO()
    picture.save(baseline, "JPEG", quality=90)
    cmyk = progressive_jpeg(picture.convert("CMYK"), quality=90)
    cases = {
        "baseline": baseline.getvalue(),
        "cmyk": cmyk,
        "no EOI": good[:-2],
        "cut in the first scan": good[: good.index(b"\xff\xda") + 40],
        "empty": b"",
        "not a jpeg": b"\x89PNG\r\n\x1a\n" + good[8:],
    }
    for name, data in cases.items():
        assert decode_dc(data, NO_LIMIT) is None, name
    assert decode_dc(good, 120 * 80 - 1) is None  # over the caller's pixel limit
    assert decode_dc(good, 120 * 80) is not None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
    ),
    cut=st.one_of(st.none(), st.floats(0, 1)),
    seed=st.integers(0, 3),
)
def test_mutated_jpegs_never_crash(
    edits: list[tuple[float, int]], cut: float | None, seed: int
) -> None:
    subsampling = seed % 3
    data = bytearray(
        progressive_jpeg(
            smooth_picture(96, 72, seed),
            quality=85,
            subsampling=subsampling,
            restart_marker_blocks=seed,
        )
    )
    header_end = data.index(b"\xff\xda") + 20
    for where, value in edits:
        # Half the edits land in the headers, where the parser is most exposed.
        span = header_end if value % 2 else len(data)
        data[int(where * span)] = value
    if cut is not None:
        del data[int(cut * len(data)) :]
    out = decode_dc(bytes(data), NO_LIMIT)
    if out is not None:
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
        assert out.shape[0] * out.shape[1] * 64 <= NO_LIMIT


def _fast_pixels_from_kernel(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
    eighth = decode_dc(data, NO_LIMIT)
    assert eighth is not None
    target = media.fast_size(width, height)
    small = Image.fromarray(eighth).resize(
        target, Image.Resampling.LANCZOS, box=(0.0, 0.0, width / 8, height / 8)
    )
    return np.asarray(small)


@pytest.fixture(scope="module")
def big_progressive() -> tuple[Image.Image, bytes]:
    picture = shapes_picture(2600, 2100, seed=7)
    return picture, progressive_jpeg(picture, quality=90)


def test_fast_path_uses_the_kernel_and_agrees_with_the_full_decode(
    big_progressive: tuple[Image.Image, bytes],
) -> None:
    _, data = big_progressive
    fast = media.decode_image(data, fast=True)
    assert (fast.width, fast.height) == (2600, 2100)
    assert fast.reduced
    assert np.array_equal(fast.pixels, _fast_pixels_from_kernel(data))
    full = media.decode_image(data, fast=False)
    distance = PdqSignal.distance(pdq_from_pixels(full.pixels)[0], pdq_from_pixels(fast.pixels)[0])
    assert distance <= 10


def test_fast_path_applies_exif_orientation(big_progressive: tuple[Image.Image, bytes]) -> None:
    picture, data = big_progressive
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    rotated = progressive_jpeg(picture, quality=90, exif=exif.tobytes())
    upright = media.decode_image(data, fast=True)
    shown = media.decode_image(rotated, fast=True)
    assert (shown.width, shown.height) == (2100, 2600)
    assert np.array_equal(shown.pixels, np.rot90(upright.pixels, k=-1))


def test_fast_path_falls_back_when_the_kernel_declines(
    big_progressive: tuple[Image.Image, bytes],
) -> None:
    _, data = big_progressive
    with pytest.raises(MediaError) as info:
        media.decode_image(data[: len(data) // 2], fast=True)
    assert info.value.reason == "truncated"
