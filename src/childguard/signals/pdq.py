"""PDQ: Meta's 256-bit perceptual hash, computed with the `pdqhash` package.

Hashes are 64 lowercase hex characters; distance is Hamming distance; the
default match threshold is 31 and hashes with quality under 50 are weak.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pdqhash

from childguard.errors import InvalidSignal
from childguard.signals.base import SignalType

PDQ_BITS = 256
DEFAULT_THRESHOLD = 31
MIN_QUALITY = 50
# Order of pdqhash.compute_dihedral's outputs.
DIHEDRAL_NAMES = (
    "original",
    "rot90",
    "rot180",
    "rot270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


class PdqSignal(SignalType):
    name = "pdq"
    exact: ClassVar[bool] = False
    default_threshold: ClassVar[int] = DEFAULT_THRESHOLD

    @classmethod
    def validate(cls, value: str) -> str:
        v = value.strip().lower()
        if len(v) != 64:
            raise InvalidSignal(
                f"not a PDQ hash (want 64 hex digits, got {len(v)}): {value[:80]!r}"
            )
        try:
            bytes.fromhex(v)
        except ValueError:
            raise InvalidSignal(f"not a PDQ hash (non-hex characters): {value[:80]!r}") from None
        return v

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return (int(a, 16) ^ int(b, 16)).bit_count()


def bits_to_hex(bits: np.ndarray) -> str:
    """pdqhash's 256 0/1 values to the reference's hex string."""
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def hex_to_bytes(value: str) -> bytes:
    return bytes.fromhex(value)


def hexes_to_array(values: list[str]) -> np.ndarray:
    """Pack hex PDQ hashes into an (n, 32) uint8 array, the layout the indexes use."""
    if not values:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), dtype=np.uint8).reshape(-1, 32)


def hamming_many(query: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Hamming distances from one packed (32,) hash to packed (n, 32) hashes."""
    return _POPCOUNT[np.bitwise_xor(hashes, query)].sum(axis=1, dtype=np.int32)


def pdq_from_pixels(pixels: np.ndarray) -> tuple[str, int]:
    """PDQ hash (hex) and quality (0-100) of an HxWx3 uint8 RGB array."""
    bits, quality = pdqhash.compute(np.ascontiguousarray(pixels))
    return bits_to_hex(bits), int(quality)


def pdq_dihedral_from_pixels(pixels: np.ndarray) -> tuple[list[str], int]:
    """The 8 rotation/flip variants (order: DIHEDRAL_NAMES) and the quality."""
    all_bits, quality = pdqhash.compute_dihedral(np.ascontiguousarray(pixels))
    return [bits_to_hex(b) for b in all_bits], int(quality)
