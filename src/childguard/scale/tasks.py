# Owns the work a Dask worker does for a cluster scan: hash a batch, search the index snapshot.
"""One task of a cluster scan, run on a Dask worker: hash a batch of sources through the one
pipeline (`childguard.pipeline.hash_many`, the same hashing as a local scan: the same
options, the same error records), then search every query view of the batch in the worker's
copy of the derived indexes (`childguard.scale.snapshot.worker_indexes`, loaded once per
worker process) at the radius the client's matcher searches at.

The answers go back with the records, keyed by signal type and query value; the client
finishes matching with them (`AnsweredIndex`): bank settings, per-bank thresholds, allow
banks, exact hashes and protected verification, all through the same `Matcher` as a local
scan. A worker never opens the store.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from childguard.index.base import Candidate, SignalIndex
from childguard.pipeline import HashOptions, Source, hash_many
from childguard.scale.snapshot import IndexRef, worker_indexes
from childguard.signals.content import ContentSignals

Answers = dict[str, dict[str, list[Candidate]]]
"""Index hits by signal type, then by query value."""


@dataclass
class BatchResult:
    """What one task sends back: the batch's records, in order, and the index's answers."""

    records: list[ContentSignals]
    answers: Answers = field(default_factory=dict)


def search_views(
    indexes: Mapping[str, SignalIndex], records: Sequence[ContentSignals], radii: Mapping[str, Any]
) -> Answers:
    """Every distinct query view of `records`, searched in its type's index at its radius."""
    answers: Answers = {}
    for name, radius in radii.items():
        index = indexes.get(name)
        if index is None or radius is None or len(index) == 0:
            continue
        values = list(
            dict.fromkeys(
                v.value for r in records for v in r.query_views() if v.signal_type == name
            )
        )
        if values:
            answers[name] = dict(zip(values, index.query(values, radius), strict=True))
    return answers


def hash_and_search(
    sources: list[Source], options: HashOptions, ref: IndexRef, radii: dict[str, Any]
) -> BatchResult:
    """The task: hash `sources` here, in order, and search their views (see the module)."""
    records = list(hash_many(sources, workers=1, options=options))
    indexes = worker_indexes(ref) if radii else {}
    return BatchResult(records, search_views(indexes, records, radii))


class AnsweredIndex(SignalIndex):
    """A read-only stand-in for one signal type's index on the client, answering the
    matcher's query with the hits the workers found for a batch. A query for a value no
    worker searched, or at another radius, is a bug and raises."""

    def __init__(self, size: int, radius: Any, answers: Mapping[str, list[Candidate]]) -> None:
        self.size = size
        self.radius = radius
        self.answers = answers

    def query(self, values: Sequence[str], threshold: Any) -> list[list[Candidate]]:
        if threshold != self.radius:
            raise ValueError(f"searched at {self.radius!r}, asked at {threshold!r}")
        return [list(self.answers[v]) for v in values]

    def __len__(self) -> int:
        return self.size

    @classmethod
    def from_values(cls, ids: np.ndarray, values: Sequence[str]) -> Self:
        raise NotImplementedError("an answered index holds no entries")

    def add_values(self, ids: np.ndarray, values: Sequence[str]) -> None:
        raise NotImplementedError("an answered index is read-only")

    def remove(self, ids: np.ndarray) -> int:
        raise NotImplementedError("an answered index is read-only")

    def live_ids(self) -> np.ndarray:
        raise NotImplementedError("an answered index holds no entries")

    def save(self, path: Path) -> None:
        raise NotImplementedError("an answered index is not saved")

    @classmethod
    def load(cls, path: Path) -> Self:
        raise NotImplementedError("an answered index is not saved")
