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
