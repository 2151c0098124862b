"""Indexes over bank signals: `PdqIndex` (Hamming radius, multi-index hashing) and
`ExactIndex` (md5/sha1/sha256 lookup). Indexes are derived data, rebuildable from the store."""

from childguard.index.exact import ExactIndex
from childguard.index.pdq import PdqIndex, default_prefix_bits
from childguard.index.result import SearchResult

__all__ = ["ExactIndex", "PdqIndex", "SearchResult", "default_prefix_bits"]
