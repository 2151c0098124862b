"""Small synthetic photos for tests that need real image bytes (no photo files needed)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def jpeg_bytes(seed: int = 1) -> bytes:
    """A 320x240 JPEG of smooth random colour, different for each seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def exif_photo(
    path: Path, orientation: int = 1, *, size: tuple[int, int] = (200, 120), quality: int = 90
) -> Path:
    """A synthetic JPEG (`size` = width, height) with GPS, a camera serial, the owner's name and
    dates in its EXIF, for the check before publishing."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) % 256], axis=-1)
    img = Image.fromarray(arr.astype(np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "ExampleCam"
    exif[0x013B] = "Jane Leader"
    exif[0x0112] = orientation
    sub = exif.get_ifd(0x8769)
    sub[0xA431] = "SN-0042-XYZ"
    sub[0xA430] = "Jane Leader"
    sub[0x9003] = "2024:07:14 10:31:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (51.0, 3.0, 0.0), 3: "E", 4: (3.0, 43.0, 30.0)})
    img.save(path, "JPEG", exif=exif, quality=quality)
    return path


def blocks_photo(seed: int) -> np.ndarray:
    """A 400x300 RGB picture of coloured blocks on a smooth ground (a strong PDQ hash, whose
    rotations and flips are far from it)."""
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)).resize((400, 300))
    draw = ImageDraw.Draw(img)
    for _ in range(30):
        x, y, r = int(rng.integers(0, 380)), int(rng.integers(0, 280)), int(rng.integers(8, 50))
        draw.rectangle((x, y, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return np.asarray(img)


def plain_photo(path: Path) -> Path:
    """An 800x600 JPEG of a smooth colour gradient: no ORB keypoints and a weak PDQ hash (the
    kind of picture `protect.register.photo_warning` calls too plain)."""
    yy, xx = np.mgrid[0:600, 0:800] / 800
    arr = np.stack(
        [
            128 + 100 * np.sin(3 * xx + 1),
            128 + 100 * np.cos(2 * yy + xx),
            128 + 90 * np.sin(2 * xx * yy + 2),
        ],
        axis=-1,
    )
    Image.fromarray(arr.astype(np.uint8)).save(path, "JPEG", quality=92)
    return path


def two_blobs_photo(path: Path) -> Path:
    """An 800x600 grey JPEG of two soft blobs: a strong PDQ hash but few ORB keypoints."""
    yy, xx = np.mgrid[0:600, 0:800]
    arr = (
        30
        + 200 * np.exp(-((xx - 250) ** 2 + (yy - 200) ** 2) / (2 * 90.0**2))
        + 150 * np.exp(-((xx - 600) ** 2 + (yy - 420) ** 2) / (2 * 70.0**2))
    )
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).convert("RGB").save(path, "JPEG", quality=92)
    return path
