"""The SignalIndex interface (a near-match index over one signal type's bank entries) and the
SignalComparison it returns.

Ids are bank entry ids (int64). Indexes are derived data: built from the store, saved beside
it, and kept in step by adding and removing ids (see `childguard.matcher.bank_index`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np


@dataclass(frozen=True)
class SignalComparison:
    """The result of comparing two signals of one type.

    `distance` is the type's own distance (0 is identical); `detail` carries what a type
    compares beyond one number (vPDQ: the share of query and bank frames matched)."""

    match: bool
    distance: int
    detail: Mapping[str, float] | None = None


Candidate = tuple[int, SignalComparison]


class SignalIndex(ABC):
    """Searchable bank entries of one signal type."""

    @classmethod
    @abstractmethod
    def from_values(cls, ids: np.ndarray, values: Sequence[str]) -> Self:
        """An index of `values` (canonical strings) under `ids`."""

    @abstractmethod
    def add_values(self, ids: np.ndarray, values: Sequence[str]) -> None: ...

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Drop every entry carrying one of `ids`; returns how many were dropped."""

    @abstractmethod
    def live_ids(self) -> np.ndarray: ...

    @abstractmethod
    def __len__(self) -> int:
        """Number of entries held."""

    @abstractmethod
    def save(self, path: Path) -> None: ...

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> Self: ...

    @abstractmethod
    def query(self, values: Sequence[str], threshold: Any) -> list[list[Candidate]]:
        """For each query value, every entry within `threshold` and its comparison."""
