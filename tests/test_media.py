"""Safe decoding: formats, EXIF orientation, limits and every kind of bad input."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from childguard.errors import MediaError
from childguard.media import Content, Limits, decode_image, fast_size, fitted_size, sniff_format
from childguard.signals.pdq import PdqSignal, pdq_from_pixels


def scene(w: int = 320, h: int = 240, seed: int = 0) -> np.ndarray:
    """A synthetic picture with structure at several scales (gradients, blocks, a disc)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.float64)
    img[..., 0] = 255 * x / w
    img[..., 1] = 255 * y / h
    img[..., 2] = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
    for _ in range(6):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(10, h // 3)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.integers(0, 255, 3)
    return img.clip(0, 255).astype(np.uint8)


def encode(pixels: np.ndarray, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "HEIF", "AVIF"])
def test_every_format_decodes_to_the_same_picture(fmt: str) -> None:
    pixels = scene()
    reference, _ = pdq_from_pixels(pixels)
    kw: dict[str, object] = {"quality": 95} if fmt in ("JPEG", "WEBP", "HEIF", "AVIF") else {}
    decoded = decode_image(encode(pixels, fmt, **kw))
    assert decoded.format in (fmt, "MPO")
    assert (decoded.width, decoded.height) == (320, 240)
    assert decoded.pixels.shape == (240, 320, 3)
    pdq, _ = pdq_from_pixels(decoded.pixels)
    # GIF quantises to 256 colours; everything else is (near) lossless at this quality.
    assert PdqSignal.distance(reference, pdq) <= (24 if fmt == "GIF" else 12)


def test_gif_uses_the_first_frame() -> None:
    first, second = scene(seed=1), scene(seed=2)
    buf = io.BytesIO()
    Image.fromarray(first).save(buf, "GIF", save_all=True, append_images=[Image.fromarray(second)])
    decoded = decode_image(buf.getvalue())
    want = decode_image(encode(first, "GIF")).pixels
    assert np.array_equal(decoded.pixels, want)


def test_exif_orientation_is_applied_before_hashing() -> None:
    pixels = scene(400, 300)
    upright = Image.fromarray(np.rot90(pixels, k=-1).copy())  # what a viewer shows: 300x400
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    stored = encode(pixels, "PNG", exif=exif.tobytes())
    decoded = decode_image(stored)
    assert (decoded.width, decoded.height) == (300, 400)
    assert np.array_equal(decoded.pixels, np.asarray(upright))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "I;16"])
@pytest.mark.parametrize("fast", [True, False])
def test_exif_orientation_holds_for_modes_converted_to_rgb(mode: str, fast: bool) -> None:
    """Compositing transparency on white and widening 16-bit grey make new images: the
    orientation read before them still turns the photo upright."""
    image = Image.fromarray(scene(400, 300))
    image = image.convert("I;16") if mode == "I;16" else image.convert(mode)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif.tobytes())
    decoded = decode_image(out.getvalue(), fast=fast)
    assert (decoded.width, decoded.height) == (300, 400)
    assert decoded.pixels.shape[0] > decoded.pixels.shape[1]
    plain = io.BytesIO()
    image.save(plain, "PNG")
    unturned = decode_image(plain.getvalue(), fast=fast).pixels
    assert np.array_equal(decoded.pixels, np.rot90(unturned, k=-1))


def test_transparency_is_composited_on_white() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    decoded = decode_image(encode(rgba, "PNG"))
    assert (decoded.pixels == 255).all()


def test_sixteen_bit_greyscale_is_scaled_not_clipped() -> None:
    grey = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, "PNG")
    pixels = decode_image(buf.getvalue()).pixels
    assert pixels.min() == 0 and pixels.max() == 255


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"hello, not an image at all", "not-an-image"),
        (b"\x00\x00\x00\x18ftypmif1" + b"\x00" * 40, "corrupt"),
    ],
)
def test_bad_bytes_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(MediaError) as err:
        decode_image(data)
    assert err.value.reason == reason


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_truncated_files_are_errors_never_grey_padding(fmt: str) -> None:
    data = encode(scene(), fmt, **({"quality": 90} if fmt in ("JPEG", "WEBP") else {}))
    with pytest.raises(MediaError) as err:
        decode_image(data[: len(data) // 2])
    assert err.value.reason in ("truncated", "corrupt")


def test_decompression_bomb_is_refused_before_decoding() -> None:
    # A 20000x20000 PNG of zeros compresses to a few hundred KB but is 400 MP.
    big = Image.new("L", (20000, 20000))
    buf = io.BytesIO()
    big.save(buf, "PNG", compress_level=1)
    with pytest.raises(MediaError) as err:
        decode_image(buf.getvalue())
    assert err.value.reason == "too-many-pixels"
    assert "decompression bomb" in err.value.message


def test_pixel_and_byte_limits_are_configurable() -> None:
    data = encode(scene(), "PNG")
    with pytest.raises(MediaError) as err:
        decode_image(data, Limits(max_pixels=1000))
    assert err.value.reason == "too-many-pixels"
    with pytest.raises(MediaError) as err:
        decode_image(data, Limits(max_bytes=100))
    assert err.value.reason == "too-large"


def test_sniffing_knows_the_supported_containers() -> None:
    assert sniff_format(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"\x00\x00\x00\x1cftypavif") == "AVIF"
    assert sniff_format(b"%PDF-1.7") is None


@pytest.mark.parametrize(("w", "h"), [(4352, 2448), (2560, 1600), (5120, 2880), (1000, 700)])
def test_fast_size_keeps_pdq_blur_the_same_fraction_of_each_side(w: int, h: int) -> None:
    limits = Limits()
    rw, rh = fast_size(w, h, limits)
    for full, reduced in ((w, rw), (h, rh)):
        if math.ceil(full / 128) > limits.pdq_window:
            assert math.ceil(reduced / 128) == limits.pdq_window
            rel_full, rel_reduced = math.ceil(full / 128) / full, limits.pdq_window / reduced
            assert abs(rel_full - rel_reduced) / rel_full < 0.01
        else:
            assert reduced == full
    assert rw * rh <= limits.work_pixels


def test_small_images_are_not_reduced() -> None:
    decoded = decode_image(encode(scene(320, 240), "JPEG", quality=90))
    assert not decoded.reduced and decoded.pixels.shape == (240, 320, 3)


def test_fast_path_reduces_large_jpegs_but_reports_original_size() -> None:
    pixels = np.asarray(Image.fromarray(scene(800, 600)).resize((3200, 2400)))
    decoded = decode_image(encode(pixels, "JPEG", quality=90))
    assert decoded.reduced
    assert (decoded.width, decoded.height) == (3200, 2400)
    assert decoded.pixels.shape[0] * decoded.pixels.shape[1] < 200_000


# ---------------------------------------------------------------- the picture (aspect kept)


@pytest.mark.parametrize(
    "size,side,want",
    [
        ((4000, 3000), 1280, (1280, 960)),
        ((3000, 4000), 1280, (960, 1280)),
        ((640, 480), 1280, (640, 480)),
        ((10000, 7), 1280, (1280, 1)),
        ((1281, 1281), 1280, (1280, 1280)),
    ],
)
def test_fitted_size_keeps_the_aspect_and_never_enlarges(
    size: tuple[int, int], side: int, want: tuple[int, int]
) -> None:
    assert fitted_size(*size, side) == want


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("size", [(2400, 1800), (1800, 2400), (4000, 1000), (1500, 1500)])
def test_the_picture_keeps_the_aspect_the_fast_path_bends(fmt: str, size: tuple[int, int]) -> None:
    """The fast path reduces each side apart (a 4:3 photo comes out near square); the picture
    keeps the photo's aspect, at most `picture_side` on its longest side and, for a JPEG that
    DCT scaling reduced, at least `dc_min_fraction` of that."""
    w, h = size
    pixels = np.asarray(Image.fromarray(scene(400, 300)).resize(size))
    content = Content(encode(pixels, fmt, **({"quality": 90} if fmt == "JPEG" else {})))
    fast = content.image().pixels
    picture = content.picture()
    ph, pw = picture.shape[:2]
    limits = content.limits
    assert max(ph, pw) <= limits.picture_side
    assert max(ph, pw) >= limits.dc_min_fraction * limits.picture_side
    assert abs(pw / ph - w / h) <= 0.01 * (w / h)
    if fmt == "PNG":
        assert (pw, ph) == fitted_size(w, h, limits.picture_side)
    if w != h:  # what the fast path hands PDQ is much nearer square than the photo
        assert abs(fast.shape[1] / fast.shape[0] - 1) < 0.5 * abs(w / h - 1)
    assert content.picture() is picture  # decoded once
    # the same picture as the full decode, reduced
    full = Image.fromarray(decode_image(content.data, fast=False).pixels).resize((pw, ph))
    assert np.abs(np.asarray(full).astype(int) - picture.astype(int)).mean() < 6


def test_a_small_photos_picture_is_the_fast_paths_pixels() -> None:
    content = Content(encode(scene(320, 240), "JPEG", quality=90))
    assert content.picture() is content.image().pixels


def test_the_picture_is_shown_upright() -> None:
    pixels = np.asarray(Image.fromarray(scene(400, 300)).resize((2000, 1500)))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    picture = Content(encode(pixels, "JPEG", quality=90, exif=exif.tobytes())).picture()
    h, w = picture.shape[:2]
    assert h > w and abs(h / w - 4 / 3) < 0.01
    upright = np.asarray(Image.fromarray(np.rot90(pixels, k=-1).copy()).resize((w, h)))
    assert np.abs(upright.astype(int) - picture.astype(int)).mean() < 6


@pytest.mark.parametrize(
    "fmt,mode", [("PNG", "RGB"), ("PNG", "RGBA"), ("WEBP", "RGB"), ("TIFF", "RGB")]
)
def test_a_wanted_picture_comes_from_the_one_decode_of_a_photo_that_is_no_jpeg(
    fmt: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `picture_wanted`, a photo that is no JPEG is decoded once for the fast path's
    pixels and the picture alike, and both are the very pixels two decodes give (PDQ's among
    them), orientation included."""
    import childguard.media as media

    pixels = np.asarray(Image.fromarray(scene(400, 300)).resize((2000, 1500)))
    image = Image.fromarray(pixels).convert(mode)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = io.BytesIO()
    image.save(out, fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
    data = out.getvalue()
    decodes: list[object] = []
    real = media._decode

    def counted(*args: object, **kwargs: object) -> object:
        decodes.append(kwargs.get("picture_side"))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(media, "_decode", counted)
    twice = Content(data)
    fast, picture = twice.image().pixels, twice.picture()
    assert len(decodes) == 2
    decodes.clear()
    once = Content(data, picture_wanted=True)
    assert np.array_equal(once.image().pixels, fast)
    assert np.array_equal(once.picture(), picture)
    assert decodes == [once.limits.picture_side]
    h, w = picture.shape[:2]
    assert h > w and (w, h) == fitted_size(1500, 2000, once.limits.picture_side)


def test_a_wanted_picture_of_a_jpeg_is_its_own_dct_scaled_decode() -> None:
    pixels = np.asarray(Image.fromarray(scene(400, 300)).resize((2000, 1500)))
    data = encode(pixels, "JPEG", quality=90)
    assert np.array_equal(Content(data, picture_wanted=True).picture(), Content(data).picture())


def test_a_picture_that_cannot_be_decoded_raises_every_time() -> None:
    content = Content(b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    for _ in range(2):
        with pytest.raises(MediaError):
            content.picture()
