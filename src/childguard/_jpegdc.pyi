"""Type stub for the DC-only progressive JPEG decoder (_jpegdc.c)."""

import numpy as np

def decode_dc(data: bytes, max_pixels: int) -> np.ndarray | None: ...
