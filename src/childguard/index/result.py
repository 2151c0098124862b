"""`SearchResult`: what a PDQ index search returns, as flat numpy arrays."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SearchResult:
    """Matches of a batch of queries, one row per (query, entry) pair within the radius.

    `query_index[k]` is the position of the query in the batch, `ids[k]` the matched entry's id
    and `distances[k]` the Hamming distance. Rows are grouped by query in ascending query order;
    within a query the order is unspecified (call `sorted()` for (query, id) order).
    """

    query_index: np.ndarray  # int64
    ids: np.ndarray  # int64
    distances: np.ndarray  # int32

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @classmethod
    def empty(cls) -> SearchResult:
        return cls(
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        )

    def sorted(self) -> SearchResult:
        """The same rows, sorted by query, then id, then distance."""
        order = np.lexsort((self.distances, self.ids, self.query_index))
        return SearchResult(self.query_index[order], self.ids[order], self.distances[order])

    def offsets(self, n_queries: int) -> np.ndarray:
        """CSR offsets: the rows of query i are offsets[i]:offsets[i + 1]."""
        counts = np.bincount(self.query_index, minlength=n_queries)
        out = np.zeros(n_queries + 1, dtype=np.int64)
        np.cumsum(counts, out=out[1:])
        return out

    def for_query(self, i: int) -> Iterator[tuple[int, int]]:
        """(id, distance) pairs of query i."""
        mask = self.query_index == i
        yield from zip(self.ids[mask].tolist(), self.distances[mask].tolist(), strict=True)
