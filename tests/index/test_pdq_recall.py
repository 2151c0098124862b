"""PdqIndex returns exactly what brute force returns (recall 100%, no extras, right distances)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from childguard.index import PdqIndex
from childguard.signals.pdq import hexes_to_array

from .helpers import check_against_reference, flip_exactly

DATA = Path(__file__).parent / "data"


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_bases=st.integers(1, 12),
    n=st.integers(0, 400),
    radius=st.integers(0, 64),
    prefix_bits=st.one_of(st.none(), st.integers(1, 12)),
)
def test_radius_search_matches_brute_force(
    seed: int, n_bases: int, n: int, radius: int, prefix_bits: int | None
) -> None:
    """Clustered banks (near variants of a few bases, duplicates included) and queries at
    exactly radius, radius + 1 and radius - 1 from entries, at every radius 0..64."""
    rng = np.random.default_rng(seed)
    bases = rng.integers(0, 256, (n_bases, 32), dtype=np.uint8)
    hashes = flip_exactly(bases[rng.integers(0, n_bases, n)], rng.integers(0, 48, n), rng)
    if n:
        dup = rng.integers(0, n, min(n, 20))
        hashes = np.concatenate([hashes, hashes[dup]])  # exact duplicates, other ids
    ids = rng.permutation(10 * hashes.shape[0] + 1)[: hashes.shape[0]].astype(np.int64)
    targets = hashes[rng.integers(0, hashes.shape[0], 6)] if hashes.shape[0] else bases[:1]
    queries = np.concatenate(
        [
            flip_exactly(targets, radius, rng),
            flip_exactly(targets, min(radius + 1, 256), rng),
            flip_exactly(targets, max(radius - 1, 0), rng),
            rng.integers(0, 256, (2, 32), dtype=np.uint8),
        ]
    )
    index = PdqIndex(prefix_bits=prefix_bits, min_merge=0)  # min_merge=0: all in the main segment
    index.add(ids, hashes)
    assert index.stats()["delta_rows"] == 0
    check_against_reference(index, ids, hashes, queries, radius)


def test_boundary_exactly_at_radius_is_found_and_one_past_is_not() -> None:
    rng = np.random.default_rng(7)
    base = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    for radius in range(65):
        at = flip_exactly(base, radius, rng)
        past = flip_exactly(base, radius + 1, rng)
        index = PdqIndex(min_merge=0, prefix_bits=8)
        index.add(np.array([1, 2]), np.concatenate([at, past]))
        got = index.search(base, radius, strategy="mih")
        assert got.ids.tolist() == [1]
        assert got.distances.tolist() == [radius]


def test_large_random_bank_at_threshold_31() -> None:
    """Default (budget-chosen) layout on a 60k bank: uniform hashes plus near variants."""
    rng = np.random.default_rng(1)
    uniform = rng.integers(0, 256, (50_000, 32), dtype=np.uint8)
    near = flip_exactly(uniform[:10_000], rng.integers(0, 40, 10_000), rng)
    hashes = np.concatenate([uniform, near])
    ids = np.arange(hashes.shape[0], dtype=np.int64) + 5_000_000_000  # ids past 2^32
    index = PdqIndex(min_merge=0)
    index.add(ids, hashes)
    assert index.stats()["prefix_bits"] > 8
    queries = flip_exactly(hashes[rng.integers(0, hashes.shape[0], 40)], 20, rng)
    check_against_reference(index, ids, hashes, queries, 31)


def test_reference_needles_and_haystack() -> None:
    """Meta's index test data: every needle finds exactly what brute force finds at 31."""
    needles = hexes_to_array((DATA / "needles.txt").read_text().split())
    haystack = hexes_to_array((DATA / "haystack.txt").read_text().split())
    assert needles.shape == (100, 32) and haystack.shape == (1350, 32)
    ids = np.arange(haystack.shape[0], dtype=np.int64)
    for prefix_bits in (None, 4, 10):
        index = PdqIndex(prefix_bits=prefix_bits, min_merge=0)
        index.add(ids, haystack)
        check_against_reference(index, ids, haystack, needles, 31)
    found = index.search(needles, 31)
    assert len(found) > 0  # the haystack does hold near variants of needles


def test_memory_within_64_bytes_per_hash() -> None:
    rng = np.random.default_rng(3)
    for n, ids in (
        (300_000, np.arange(300_000, dtype=np.int64)),
        (300_000, rng.integers(-(2**62), 2**62, 300_000)),  # ids that need 8 bytes
    ):
        index = PdqIndex()
        index.add(ids, rng.integers(0, 256, (n, 32), dtype=np.uint8))
        assert index.stats()["delta_rows"] == 0
        assert index.memory_bytes() / n <= 64


def test_build_and_first_bulk_add_give_the_same_answers() -> None:
    rng = np.random.default_rng(11)
    hashes = rng.integers(0, 256, (3_000, 32), dtype=np.uint8)
    ids = rng.permutation(3_000).astype(np.int64)
    built = PdqIndex.build(ids, hashes)
    added = PdqIndex(min_merge=100)
    added.add(ids, hashes)  # bigger than min_merge: goes straight to the main segment
    assert built.stats() == added.stats() and added.stats()["delta_rows"] == 0
    queries = flip_exactly(hashes[:30], 25, rng)
    check_against_reference(built, ids, hashes, queries, 31)
    assert len(PdqIndex.build(np.zeros(0, np.int64), np.zeros((0, 32), np.uint8))) == 0
