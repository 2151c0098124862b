"""Indexes over the bank entries of near signal types, behind `SignalIndex` (`base`): `PdqIndex`
(Hamming radius, multi-index hashing) and `VpdqIndex` (video frames, over a `PdqIndex`).
Indexes are derived data, rebuildable from the store. Exact signal types have no index here:
the store looks them up by value (`childguard.banks.lookup_values`)."""

from childguard.index.base import SignalComparison, SignalIndex
from childguard.index.pdq import PdqIndex, default_prefix_bits
from childguard.index.result import SearchResult

__all__ = ["PdqIndex", "SearchResult", "SignalComparison", "SignalIndex", "default_prefix_bits"]
