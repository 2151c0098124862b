"""The Qt .rcc reader, on bundles written by the test (all versions, zlib, damage)."""

from __future__ import annotations

import struct

import pytest
from bench.robustness.rcc import RccError, build_rcc, read_rcc

FILES = {
    "a.webp": b"RIFF\x00\x00\x00\x00WEBPdata",
    "notes.txt": b"hello " * 50,
    "\u00e9t\u00e9.jpg": b"\xff\xd8\xff" + bytes(range(256)),
}


@pytest.mark.parametrize("version", [1, 2, 3])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(version: int, compress: bool) -> None:
    entries = read_rcc(build_rcc(FILES, version=version, compress=compress))
    assert {e.path: e.data for e in entries} == FILES


def test_not_an_rcc() -> None:
    with pytest.raises(RccError, match="magic"):
        read_rcc(b"PK\x03\x04" + b"\0" * 40)


def test_unknown_version() -> None:
    blob = bytearray(build_rcc(FILES))
    blob[4:8] = struct.pack(">I", 9)
    with pytest.raises(RccError, match="version 9"):
        read_rcc(bytes(blob))


def test_truncated_bundle_is_an_error_not_garbage() -> None:
    blob = build_rcc(FILES)
    with pytest.raises(RccError):
        read_rcc(blob[: len(blob) - 30])


def test_corrupt_zlib_entry() -> None:
    blob = bytearray(build_rcc({"x.bin": b"z" * 400}, compress=True))
    # The data table starts right after the 24-byte header and two 22-byte tree nodes.
    data = 24 + 2 * 22
    blob[data + 8 : data + 14] = b"\xff" * 6  # inside the zlib stream, past the size fields
    with pytest.raises(RccError, match=r"zlib|decompressed"):
        read_rcc(bytes(blob))
