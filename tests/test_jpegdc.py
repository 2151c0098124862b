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


# ---- PDQ in the kernel, and the luma-only fast path ------------------------------------------


def test_kernel_pdq_gives_pdqhashs_bits_and_quality() -> None:
    """`_jpegdc.pdq` against Meta's C++ through `pdqhash`, on noise, smooth pictures, the 64x64
    shortcut, grey and images too small to hash."""
    import pdqhash

    from childguard._jpegdc import pdq
    from childguard.signals.pdq import bits_to_hex

    rng = np.random.default_rng(3)
    images = [np.asarray(shapes_picture(w, h, seed=w)) for w, h in [(64, 64), (301, 157), (5, 9)]]
    images += [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for w, h in [(640, 37), (4, 50)]]
    images.append(np.asarray(smooth_picture(257, 129).convert("L").convert("RGB")))
    for rgb in images:
        bits, quality = pdqhash.compute(rgb)
        raw, got_quality = pdq(rgb)
        assert (raw.hex(), got_quality) == (bits_to_hex(bits), int(quality)), rgb.shape
        if rgb.shape[0] >= 5 and rgb.shape[1] >= 5 and np.all(rgb[..., 0] == rgb[..., 2]):
            assert pdq(np.ascontiguousarray(rgb[..., 0]))[0] == raw  # a grey plane, the same
    assert pdq(np.zeros((4, 50, 3), np.uint8)) == (bytes(32), 0)
    with pytest.raises(ValueError):
        pdq(np.zeros((8, 8, 4), np.uint8))


def test_pdq_of_a_resized_plane_is_the_pdq_of_the_resized_image() -> None:
    """`pdq_resized` never makes the resized image; its hash is that of Pillow's Lanczos
    resize (box and all) hashed by the kernel."""
    from childguard._jpegdc import pdq, pdq_resized

    for seed, (w, h), size, box in [
        (1, (320, 200), (2560, 1600), (0.0, 0.0, 320.0, 200.0)),
        (2, (171, 135), (1365, 1074), (0.0, 0.0, 170.625, 134.25)),
        (3, (640, 400), (384, 369), (0.0, 0.0, 640.0, 400.0)),
        (4, (200, 300), (900, 1300), (0.5, 0.25, 200.0, 300.0)),
    ]:
        plane = np.asarray(shapes_picture(w, h, seed).convert("L"), dtype=np.float32)
        resized = Image.fromarray(plane, "F").resize(size, Image.Resampling.LANCZOS, box=box)
        want, want_quality = pdq(np.asarray(resized))
        got, quality = pdq_resized(plane, size, box)
        assert PdqSignal.distance(got.hex(), want.hex()) <= 2
        assert abs(quality - want_quality) <= 2
        assert (
            pdq_resized(plane.astype(np.uint8), size, box)[0]
            == pdq_resized(np.rint(plane).astype(np.float32), size, box)[0]
        )
    with pytest.raises(ValueError):
        pdq_resized(np.zeros((10, 10), np.float32), (100, 100), (0.0, 0.0, 11.0, 10.0))
    with pytest.raises(ValueError):
        pdq_resized(np.zeros((10, 10), np.float32), (4, 100), (0.0, 0.0, 10.0, 10.0))


def test_the_dc_kernel_gives_the_luma_of_the_block_means() -> None:
    data = progressive_jpeg(smooth_picture(203, 157), quality=90, subsampling=2)
    luma = decode_dc(data, NO_LIMIT, True)
    assert luma is not None and luma.dtype == np.float32 and luma.shape == (20, 26)
    means = block_means(data)
    want = means[..., 0] * 0.299 + means[..., 1] * 0.587 + means[..., 2] * 0.114
    assert np.abs(luma - want).mean() <= 2.0


@pytest.fixture(scope="module")
def mid_photo() -> Image.Image:
    """A 1800x1200 picture: its 1/8 image is below the window-matched floor."""
    return shapes_picture(1800, 1200, seed=11)


def test_progressive_jpegs_below_the_floor_hash_from_their_dc_scans(
    mid_photo: Image.Image,
) -> None:
    data = progressive_jpeg(mid_photo, quality=90)
    fast = media.decode_image(data, fast=True)
    assert fast.luma is not None
    assert fast.luma.plane.shape == (150, 225)  # the DC scans' 1/8 image
    assert fast.luma.size == (1800, 1200)  # hashed as if at the original's size
    assert callable(fast._pixels)  # no RGB made until asked for
    assert fast.pixels.shape == (*reversed(media.fast_size(1800, 1200)), 3)
    full = pdq_from_pixels(media.decode_image(data, fast=False).pixels)[0]
    assert PdqSignal.distance(full, PdqSignal.hash_content(media.Content(data)).value) <= 10
    off = media.decode_image(data, media.Limits(dc_min_window=0))
    assert off.luma is not None and off.luma.plane.shape == (300, 450)  # libjpeg at 1/4


def test_sequential_jpegs_hash_from_libjpegs_luma(mid_photo: Image.Image) -> None:
    buf = io.BytesIO()
    mid_photo.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    fast = media.decode_image(data, fast=True)
    assert fast.luma is not None and fast.luma.plane.dtype == np.uint8
    assert fast.luma.plane.shape == (300, 450)  # libjpeg's 1/4 scale, grey output
    full = pdq_from_pixels(media.decode_image(data, fast=False).pixels)[0]
    assert PdqSignal.distance(full, PdqSignal.hash_content(media.Content(data)).value) <= 6


@pytest.mark.parametrize("progressive", [True, False], ids=["progressive", "sequential"])
def test_the_luma_path_applies_every_exif_orientation(progressive: bool) -> None:
    picture = shapes_picture(1240, 1180, seed=5)
    hashes = set()
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        picture.save(buf, "JPEG", quality=90, progressive=progressive, exif=exif.tobytes())
        data = buf.getvalue()
        fast = media.decode_image(data, fast=True)
        assert fast.luma is not None
        assert (fast.width, fast.height) == ((1180, 1240) if orientation >= 5 else (1240, 1180))
        full = pdq_from_pixels(media.decode_image(data, fast=False).pixels)[0]
        value = PdqSignal.hash_content(media.Content(data)).value
        assert PdqSignal.distance(full, value) <= 8, orientation
        hashes.add(value)
    assert len(hashes) == 8  # each orientation a different picture
