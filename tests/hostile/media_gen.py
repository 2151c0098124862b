"""Generators of hostile media for the defect tests and the campaign: every file is made at test
time from seeds (synthetic pixels only), never fetched."""

from __future__ import annotations

import io
import struct
import zipfile

import numpy as np
from PIL import Image


def photo(
    seed: int, size: tuple[int, int] = (320, 240), fmt: str = "JPEG", **save: object
) -> bytes:
    """A smooth random-colour picture (different for each seed) in `fmt`."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize(size, Image.Resampling.BICUBIC)
    if fmt in ("GIF",):
        image = image.convert("P")
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def jpeg_header_lie(data: bytes, width: int = 10000, height: int = 8900) -> bytes:
    """A JPEG whose frame header claims `width` x `height` over its real, smaller stream."""
    out = bytearray(data)
    for marker in (b"\xff\xc0", b"\xff\xc1", b"\xff\xc2"):
        at = out.find(marker)
        if at >= 0:
            out[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(out)
    raise ValueError("no frame header")


def many_page_tiff(pages: int, side: int = 4) -> bytes:
    """A TIFF of `pages` tiny greyscale pages (one shared strip, a chain of IFDs)."""
    pixels = bytes(i % 256 for i in range(side * side))
    out = bytearray(b"II*\x00" + struct.pack("<I", 8 + len(pixels)) + pixels)
    entries = [
        (256, 3, side),
        (257, 3, side),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 3, side),
        (279, 4, len(pixels)),
    ]
    for i in range(pages):
        start = len(out)
        ifd = struct.pack("<H", len(entries))
        for tag, typ, value in entries:
            if typ == 4:
                ifd += struct.pack("<HHII", tag, typ, 1, value)
            else:
                ifd += struct.pack("<HHIHH", tag, typ, 1, value, 0)
        following = 0 if i == pages - 1 else start + len(ifd) + 4
        out += ifd + struct.pack("<I", following)
    return bytes(out)


def png16_bomb(side: int = 9400) -> bytes:
    """A small 16-bit greyscale PNG of `side` x `side` (about 170 KB for 9400)."""
    arr = np.zeros((side, side), dtype=np.uint16)
    arr[::97, :] = 40000
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` (its data is a few bytes: a bomb header)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def nested_zip(depth: int, member: bytes, name: str = "photo.jpg") -> bytes:
    """A zip holding a zip ... `depth` levels deep, the innermost holding `member`."""
    data, inner_name = member, name
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(inner_name, data)
        data, inner_name = buf.getvalue(), f"level{depth - level}.zip"
    return data
