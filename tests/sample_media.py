"""Small synthetic photos for tests that need real image bytes (no photo files needed)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def jpeg_bytes(seed: int = 1) -> bytes:
    """A 320x240 JPEG of smooth random colour, different for each seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((320, 240), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()
