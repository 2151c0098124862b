"""A small reader for Qt binary resource bundles (`.rcc`, versions 1-3).

GCompris ships its photos as WebP files inside such bundles. The layout is:
a header (`qres`, version, tree/data/names offsets, flags from v3 on), a tree
of fixed-size nodes (14 bytes, 22 from v2 on), a names table (u16 length,
u32 hash, UTF-16BE name) and a data table (u32 length, bytes). zlib-compressed
entries carry Qt's qCompress framing (u32 uncompressed size, then zlib).
zstd-compressed entries (flag 4) are reported as unsupported, not guessed at.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

MAGIC = b"qres"
FLAG_COMPRESSED = 0x01
FLAG_DIRECTORY = 0x02
FLAG_COMPRESSED_ZSTD = 0x04


class RccError(ValueError):
    """The bytes are not a readable Qt resource bundle."""


@dataclass(frozen=True)
class RccEntry:
    path: str  # "/"-joined path inside the bundle, without a leading slash
    data: bytes


class _Reader:
    def __init__(self, blob: bytes) -> None:
        if len(blob) < 20 or blob[:4] != MAGIC:
            raise RccError("not a Qt resource bundle (missing 'qres' magic)")
        self.blob = blob
        self.version, self.tree, self.data, self.names = struct.unpack_from(">IIII", blob, 4)
        if self.version not in (1, 2, 3):
            raise RccError(f"unsupported rcc version {self.version}")
        self.node_size = 14 if self.version == 1 else 22
        for off in (self.tree, self.data, self.names):
            if off >= len(blob):
                raise RccError("rcc offsets point past the end of the file")

    def _u16(self, off: int) -> int:
        self._need(off, 2)
        return int(struct.unpack_from(">H", self.blob, off)[0])

    def _u32(self, off: int) -> int:
        self._need(off, 4)
        return int(struct.unpack_from(">I", self.blob, off)[0])

    def _need(self, off: int, n: int) -> None:
        if off < 0 or off + n > len(self.blob):
            raise RccError(f"truncated rcc: need {n} bytes at offset {off}")

    def name(self, name_off: int) -> str:
        base = self.names + name_off
        length = self._u16(base)
        self._need(base + 6, 2 * length)
        return self.blob[base + 6 : base + 6 + 2 * length].decode("utf-16-be")

    def payload(self, data_off: int, flags: int, path: str) -> bytes:
        base = self.data + data_off
        size = self._u32(base)
        self._need(base + 4, size)
        raw = self.blob[base + 4 : base + 4 + size]
        if flags & FLAG_COMPRESSED_ZSTD:
            raise RccError(f"{path}: zstd-compressed rcc entries are not supported")
        if flags & FLAG_COMPRESSED:
            if len(raw) < 4:
                raise RccError(f"{path}: truncated compressed entry")
            expected = struct.unpack_from(">I", raw, 0)[0]
            try:
                out = zlib.decompress(raw[4:])
            except zlib.error as exc:
                raise RccError(f"{path}: bad zlib data ({exc})") from None
            if len(out) != expected:
                raise RccError(f"{path}: decompressed {len(out)} bytes, header says {expected}")
            return out
        return raw

    def walk(self, index: int, prefix: str, depth: int) -> Iterator[RccEntry]:
        if depth > 64:
            raise RccError("rcc tree too deep (cycle?)")
        node = self.tree + index * self.node_size
        self._need(node, 14)
        name_off = self._u32(node)
        flags = self._u16(node + 4)
        name = "" if index == 0 else self.name(name_off)
        path = f"{prefix}/{name}" if prefix else name
        if flags & FLAG_DIRECTORY:
            count = self._u32(node + 6)
            first = self._u32(node + 10)
            if count > 1_000_000:
                raise RccError("implausible child count in rcc tree")
            for child in range(first, first + count):
                yield from self.walk(child, path, depth + 1)
        else:
            data_off = self._u32(node + 10)
            yield RccEntry(path=path, data=self.payload(data_off, flags, path))


def read_rcc(blob: bytes) -> list[RccEntry]:
    """All files in a `.rcc` bundle, in tree order."""
    return list(_Reader(blob).walk(0, "", 0))


def build_rcc(files: dict[str, bytes], *, version: int = 3, compress: bool = False) -> bytes:
    """Write a flat bundle (one root directory holding `files`): used to test the reader."""
    names = bytearray()
    data = bytearray()
    name_offsets: list[int] = []
    data_offsets: list[int] = []
    entries = sorted(files.items())
    for name, payload in entries:
        name_offsets.append(len(names))
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(encoded) // 2, 0) + encoded
        data_offsets.append(len(data))
        body = struct.pack(">I", len(payload)) + zlib.compress(payload) if compress else payload
        data += struct.pack(">I", len(body)) + body
    node_size = 14 if version == 1 else 22
    pad = b"" if version == 1 else b"\0" * 8
    tree = bytearray(struct.pack(">IHII", 0, FLAG_DIRECTORY, len(entries), 1) + pad)
    for i in range(len(entries)):
        flags = FLAG_COMPRESSED if compress else 0
        tree += struct.pack(">IHHHI", name_offsets[i], flags, 0, 0, data_offsets[i]) + pad
    assert len(tree) == node_size * (len(entries) + 1)
    header_size = 24 if version >= 3 else 20
    tree_off = header_size
    data_off = tree_off + len(tree)
    names_off = data_off + len(data)
    header = MAGIC + struct.pack(">IIII", version, tree_off, data_off, names_off)
    if version >= 3:
        header += struct.pack(">I", 0)
    return bytes(header + tree + data + names)
