"""The hostile-input corpus of the standing campaign, generated at test time from a seed.

`build(root, seed, scale)` writes the corpus under `root` and returns the display path of every
record the CLI must give for it (one per file, zip member and special file). Classes:

- byte flips, truncations and zeroed segments of every image format (JPEG baseline and
  progressive, PNG, GIF, WebP, BMP, TIFF);
- structure-aware JPEG mutations: bytes of the SOF, SOS, DHT, DQT and DRI segments changed,
  and markers planted inside the entropy-coded data;
- header lies: JPEG, PNG, GIF, TIFF and WebP dimensions that the data does not hold, and
  decompression-bomb headers;
- hostile file names (not UTF-8, control characters, Rich markup, formulas, 255 bytes, a
  leading dash), special files (FIFOs, links to devices, broken links) and zip tricks
  (repeated names, nesting past the depth budget, truncated archives, odd member names).

Every picture is synthetic (`hostile.media_gen.photo`)."""

from __future__ import annotations

import io
import os
import random
import struct
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

from hostile.media_gen import jpeg_header_lie, nested_zip, photo, png_claiming

FORMATS: dict[str, tuple[str, dict[str, object]]] = {
    "jpg": ("JPEG", {"quality": 85}),
    "prog.jpg": ("JPEG", {"quality": 85, "progressive": True}),
    "png": ("PNG", {}),
    "gif": ("GIF", {}),
    "webp": ("WEBP", {"quality": 80}),
    "bmp": ("BMP", {}),
    "tif": ("TIFF", {}),
}
JPEG_SEGMENTS = {0xC0: "sof", 0xC2: "sof", 0xDA: "sos", 0xC4: "dht", 0xDB: "dqt", 0xDD: "dri"}


def _display(path: Path | str) -> str:
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


def flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out))
        out[at] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, len(data))]


def zero(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    span = rng.randint(1, max(1, len(data) // 8))
    return data[:at] + b"\0" * min(span, len(data) - at) + data[at + span :]


def jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start of its payload, payload length) of each header segment of a JPEG."""
    found, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        found.append((marker, pos + 4, length - 2))
        if marker == 0xDA:
            break
        pos += 2 + length
    return found


def jpeg_structural(rng: random.Random, data: bytes) -> bytes:
    """Change bytes of one SOF/SOS/DHT/DQT/DRI segment, or plant a marker in the scan data."""
    segments = [s for s in jpeg_segments(data) if s[0] in JPEG_SEGMENTS]
    out = bytearray(data)
    if rng.random() < 0.3 or not segments:
        sos = data.find(b"\xff\xda")
        at = rng.randrange(sos + 12, len(out) - 2)
        planted = rng.choice([b"\xff\xd9", b"\xff\xd8", b"\xff\xda", b"\xff\xc4", b"\xff\xd3"])
        return bytes(out[:at] + planted + out[at:])
    _marker, start, length = rng.choice(segments)
    for _ in range(rng.randint(1, 3)):
        if length > 0:
            out[start + rng.randrange(length)] = rng.randrange(256)
    return bytes(out)


def png_lie(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    out[16:24] = struct.pack(">II", rng.choice([1, 65535, 2**31 - 1]), rng.randint(1, 70000))
    return bytes(out)  # the CRC no longer matches either


def gif_lie(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    out[6:10] = struct.pack("<HH", 65535, rng.randint(1, 65535))
    return bytes(out)


def tiff_lie(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for tag in (b"\x00\x01\x03\x00", b"\x01\x01\x03\x00"):  # ImageWidth, ImageLength (LE)
        at = out.find(tag)
        if at >= 0:
            out[at + 8 : at + 10] = struct.pack("<H", rng.choice([0, 1, 65535]))
    return bytes(out)


def webp_lie(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    at = out.find(b"\x9d\x01\x2a")  # the VP8 key frame start code, then 14-bit sizes
    if at >= 0:
        out[at + 3 : at + 7] = struct.pack("<HH", 16383, 16383)
    else:
        out[4:8] = struct.pack("<I", rng.randint(0, 2**32 - 1))  # the RIFF size
    return bytes(out)


LIES: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "png": png_lie,
    "gif": gif_lie,
    "tif": tiff_lie,
    "webp": webp_lie,
    "jpg": lambda rng, data: jpeg_header_lie(data, rng.randint(2000, 65535), 8900),
    "prog.jpg": lambda rng, data: jpeg_header_lie(data, 10000, rng.randint(2000, 65535)),
}

HOSTILE_NAMES = [
    b"not-utf8-\xff\xfe.jpg",
    b"ctrl-\x1b[31m-red.jpg",
    b"new\nline.jpg",
    b"[bold]markup[red].jpg",
    b"[link=x]y.jpg",
    b'=HYPERLINK("http:x").jpg',
    b"+cmd.jpg",
    b"-rf.jpg",
    b" leading space.jpg",
    b"x" * 251 + b".jpg",
    b"tab\tname.png",
    b"back\\slash.jpg",
]


def build(root: Path, seed: int, scale: int) -> list[str]:
    """Write the corpus (about 60 * `scale` + 40 inputs) and return the expected record paths."""
    rng = random.Random(seed)
    expected: list[str] = []
    files = root / "files"
    files.mkdir(parents=True)

    def write(name: str | bytes, data: bytes, folder: Path = files) -> Path:
        raw = name if isinstance(name, bytes) else name.encode()
        path = Path(os.fsdecode(os.fsencode(folder) + b"/" + raw))
        path.write_bytes(data)
        expected.append(_display(path))
        return path

    n = 0
    for suffix, (fmt, save) in FORMATS.items():
        base = photo(rng.randrange(1000), (rng.randint(40, 420), rng.randint(40, 320)), fmt, **save)
        write(f"valid-{suffix}.{suffix.split('.')[-1]}", base)
        ext = suffix.split(".")[-1]
        for _ in range(scale):
            for label, mutate in (("flip", flip), ("trunc", truncate), ("zero", zero)):
                n += 1
                write(f"{n:05d}-{label}-{suffix}.{ext}", mutate(rng, base))
            if fmt == "JPEG":
                for _ in range(3):
                    n += 1
                    write(f"{n:05d}-struct-{suffix}.{ext}", jpeg_structural(rng, base))
            if suffix in LIES:
                n += 1
                write(f"{n:05d}-lie-{suffix}.{ext}", LIES[suffix](rng, base))
    for width, height in ((11_000, 11_000), (65_535, 65_535), (1, 2**31 - 1), (0, 10)):
        n += 1
        write(f"{n:05d}-bomb-header.png", png_claiming(width, height))
    names = root / "names"
    names.mkdir()
    for raw in HOSTILE_NAMES:
        write(raw, photo(rng.randrange(1000), (64, 48)), names)
    special = root / "special"
    special.mkdir()
    os.mkfifo(special / "fifo.jpg")
    expected.append(_display(special / "fifo.jpg"))
    for target, name in (("/dev/zero", "zero.jpg"), ("/dev/null", "null.png")):
        (special / name).symlink_to(target)
        expected.append(_display(special / name))
    (special / "broken.jpg").symlink_to(special / "missing-target.jpg")
    expected.append(_display(special / "broken.jpg"))
    write("empty.jpg", b"", special)
    write("magic-only.jpg", b"\xff\xd8\xff", special)
    zips = root / "zips"
    zips.mkdir()
    _zips(zips, rng, expected)
    return expected


def _zips(folder: Path, rng: random.Random, expected: list[str]) -> None:
    dup = folder / "dup.zip"
    with zipfile.ZipFile(dup, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": the point here
        for _ in range(3):
            zf.writestr("photo.jpg", photo(rng.randrange(1000), (80, 60)))
    expected += [f"{dup}!photo.jpg", f"{dup}!photo.jpg#2", f"{dup}!photo.jpg#3"]
    nested = folder / "nested.zip"
    nested.write_bytes(nested_zip(3, photo(5, (80, 60))))
    expected.append(f"{nested}!level2.zip!level3.zip!photo.jpg")
    deep = folder / "deep.zip"
    deep.write_bytes(nested_zip(9, photo(6, (80, 60))))
    expected.append(f"{deep}!level2.zip!level3.zip!level4.zip!level5.zip")  # too deep
    good = io.BytesIO()
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("a.jpg", photo(7, (80, 60)))
    cut = folder / "cut.zip"
    cut.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    expected.append(str(cut))
    odd = folder / "odd.zip"
    with zipfile.ZipFile(odd, "w") as zf:
        zf.writestr("../../escape.jpg", photo(8, (80, 60)))
        zf.writestr("/abs.jpg", photo(9, (80, 60)))
        zf.writestr("[/b].jpg", photo(10, (80, 60)))
        zf.writestr("flipped.jpg", flip(rng, photo(11, (80, 60))))
    expected += [
        f"{odd}!/abs.jpg",
        f"{odd}!../../escape.jpg",
        f"{odd}![/b].jpg",
        f"{odd}!flipped.jpg",
    ]
