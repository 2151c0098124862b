"""Random PDQ hashes and bit flips for the video tests, from a generator each test file seeds."""

from __future__ import annotations

import random


def rand_hex(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def flip(hex_: str, bits: int, rng: random.Random) -> str:
    """`hex_` with `bits` distinct bits flipped: exactly that Hamming distance away."""
    n = int(hex_, 16)
    for b in rng.sample(range(256), bits):
        n ^= 1 << b
    return f"{n:064x}"
