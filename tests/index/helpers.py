"""Shared helpers for the index tests: hash generators and the comparison with brute force."""

from __future__ import annotations

import numpy as np

from childguard.index import PdqIndex, SearchResult
from childguard.index.reference import brute_force_search


def flip_exactly(hashes: np.ndarray, k: np.ndarray | int, rng: np.random.Generator) -> np.ndarray:
    """Copies of packed hashes with exactly k[i] distinct bits flipped in row i."""
    h = np.atleast_2d(hashes)
    ks = np.broadcast_to(np.asarray(k), (h.shape[0],))
    flips = np.zeros((h.shape[0], 256), dtype=np.uint8)
    for i, ki in enumerate(ks.tolist()):
        flips[i, rng.permutation(256)[:ki]] = 1
    return h ^ np.packbits(flips, axis=1)


def assert_same(got: SearchResult, want: SearchResult) -> None:
    g, w = got.sorted(), want.sorted()
    assert g.query_index.tolist() == w.query_index.tolist()
    assert g.ids.tolist() == w.ids.tolist()
    assert g.distances.tolist() == w.distances.tolist()


def check_against_reference(
    index: PdqIndex, ids: np.ndarray, hashes: np.ndarray, queries: np.ndarray, radius: int
) -> None:
    want = brute_force_search(ids, hashes, queries, radius)
    for strategy in ("mih", "linear", "auto"):
        got = index.search(queries, radius, strategy=strategy)  # type: ignore[arg-type]
        # rows come grouped by query, in ascending query order
        assert np.all(np.diff(got.query_index) >= 0)
        assert_same(got, want)
