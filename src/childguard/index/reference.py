"""The plain brute-force reference for PDQ radius search: every comparison, in numpy.

It is slow on purpose and obviously correct; the tests hold `PdqIndex` (and its C kernel)
to exactly what this returns.
"""

from __future__ import annotations

import numpy as np

from childguard.index.result import SearchResult

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hamming_matrix(queries: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """(m, n) Hamming distances between packed (m, 32) queries and (n, 32) hashes."""
    q = np.asarray(queries, dtype=np.uint8).reshape(-1, 32)
    h = np.asarray(hashes, dtype=np.uint8).reshape(-1, 32)
    out = np.empty((q.shape[0], h.shape[0]), dtype=np.int32)
    for i in range(q.shape[0]):
        out[i] = _POPCOUNT[np.bitwise_xor(h, q[i])].sum(axis=1, dtype=np.int32)
    return out


def brute_force_search(
    ids: np.ndarray, hashes: np.ndarray, queries: np.ndarray, radius: int
) -> SearchResult:
    """Every (query, id, distance) with distance <= radius, sorted by query then id."""
    d = hamming_matrix(queries, hashes)
    qi, col = np.nonzero(d <= radius)
    ids = np.asarray(ids, dtype=np.int64)
    return SearchResult(
        query_index=qi.astype(np.int64), ids=ids[col], distances=d[qi, col]
    ).sorted()
