"""Helpers for protect tests: synthetic benign photos and a byte-substring scanner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import Engine, MetaData, select

WINDOW = 48  # a "sizeable" substring: 48 bytes of an image file anywhere is a leak
# Any run of 2 * PIECE - 1 bytes of a file holds whole one of the file's PIECE-byte pieces that
# start at a multiple of PIECE, so those pieces alone find every 48-byte leak.
PIECE = WINDOW // 2


def synthetic_photo(path: Path, seed: int, size: tuple[int, int] = (640, 480)) -> Path:
    """A smooth, distinct colour field with shapes (nothing but drawn gradients)."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = (*rng.uniform(0.5, 6, 2).tolist(), rng.uniform(0, 6.28))
        channels.append(127 + 120 * np.sin(xx / w * fx * 6.28 + yy / h * fy * 6.28 + phase))
    img = np.stack(channels, axis=-1)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        img[y0 : y0 + int(rng.integers(20, 120)), x0 : x0 + int(rng.integers(20, 120))] = (
            rng.integers(0, 255, 3)
        )
    noise = rng.normal(0, 6, img.shape)
    arr = np.clip(img + noise, 0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=92) if path.suffix == ".jpg" else Image.fromarray(
        arr
    ).save(path)
    return path


def windows(data: bytes, k: int = PIECE, step: int = PIECE) -> set[bytes]:
    """The k-byte pieces of `data` that start every `step` bytes (by default its aligned
    pieces: see PIECE)."""
    return {data[i : i + k] for i in range(0, max(0, len(data) - k + 1), step)}


def find_leak(haystack: bytes, needles: set[bytes], k: int = PIECE) -> int | None:
    """Offset of the first k-byte window of `haystack` (at every offset) found in `needles`, or
    None."""
    for i in range(0, max(0, len(haystack) - k + 1)):
        if haystack[i : i + k] in needles:
            return i
    return None


def _cell_bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str).encode()
    return str(value).encode("utf-8", "surrogateescape")


def scan_database(engine: Engine, needles: set[bytes], hex_needles: set[bytes]) -> list[str]:
    """Every table, every row, every column: where image bytes (raw or hex) appear."""
    leaks: list[str] = []
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for col, value in zip(table.columns, row, strict=True):
                    cell = _cell_bytes(value)
                    if (
                        find_leak(cell, needles) is not None
                        or find_leak(cell.lower(), hex_needles) is not None
                    ):
                        leaks.append(f"{table.name}.{col.name}")
    return leaks
