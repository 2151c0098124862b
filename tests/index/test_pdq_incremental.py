"""Add / remove / search / save / load sequences agree with a brute-force model (stateful)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from childguard.index import PdqIndex

from .helpers import check_against_reference, flip_exactly


class IndexVersusModel(RuleBasedStateMachine):
    """The model is a plain list of (id, hash) rows; the index must always agree with it."""

    @initialize(seed=st.integers(0, 2**32 - 1), prefix_bits=st.sampled_from([None, 3, 6]))
    def start(self, seed: int, prefix_bits: int | None) -> None:
        self.rng = np.random.default_rng(seed)
        self.bases = self.rng.integers(0, 256, (4, 32), dtype=np.uint8)
        # tiny merge thresholds so merges and compactions happen within a few steps
        self.index = PdqIndex(
            prefix_bits=prefix_bits, min_merge=8, merge_fraction=0.5, compact_fraction=0.3
        )
        self.ids = np.zeros(0, dtype=np.int64)
        self.hashes = np.zeros((0, 32), dtype=np.uint8)
        self.next_id = 0
        self.tmp = Path(tempfile.mkdtemp(prefix="pdqidx-"))

    def _near(self, k: int) -> np.ndarray:
        picks = self.bases[self.rng.integers(0, 4, k)]
        return flip_exactly(picks, self.rng.integers(0, 40, k), self.rng)

    @rule(k=st.integers(1, 30), duplicate=st.booleans())
    def add(self, k: int, duplicate: bool) -> None:
        hashes = self._near(k)
        if duplicate and self.hashes.shape[0]:
            hashes[0] = self.hashes[self.rng.integers(0, self.hashes.shape[0])]
        ids = np.arange(self.next_id, self.next_id + k, dtype=np.int64)
        self.next_id += k
        self.index.add(ids, hashes)
        self.ids = np.concatenate([self.ids, ids])
        self.hashes = np.concatenate([self.hashes, hashes])

    @rule(frac=st.floats(0, 1), also_unknown=st.booleans())
    def remove(self, frac: float, also_unknown: bool) -> None:
        pick = self.ids[self.rng.random(self.ids.shape[0]) < frac]
        if also_unknown:
            pick = np.append(pick, [10**9, -5])
        removed = self.index.remove(pick)
        keep = ~np.isin(self.ids, pick)
        assert removed == int((~keep).sum())
        self.ids, self.hashes = self.ids[keep], self.hashes[keep]

    @rule()
    def compact(self) -> None:
        self.index.compact()
        assert self.index.stats()["delta_rows"] == 0
        assert self.index.stats()["removed_rows"] == 0

    @rule(mmap=st.booleans())
    def save_and_load(self, mmap: bool) -> None:
        self.index.save(self.tmp)
        self.index = PdqIndex.load(self.tmp, mmap=mmap)

    @rule(radius=st.sampled_from([0, 8, 16, 31, 40]))
    def search(self, radius: int) -> None:
        targets = self.hashes[: min(5, self.hashes.shape[0])]
        queries = np.concatenate([flip_exactly(targets, 10, self.rng), self.bases])
        check_against_reference(self.index, self.ids, self.hashes, queries, radius)

    def teardown(self) -> None:
        if hasattr(self, "tmp"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    @invariant()
    def same_size(self) -> None:
        if hasattr(self, "index"):
            assert len(self.index) == self.ids.shape[0]


IndexVersusModel.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None
)
TestIndexVersusModel = IndexVersusModel.TestCase


def test_additions_do_not_rebuild_until_the_delta_is_large() -> None:
    rng = np.random.default_rng(0)
    index = PdqIndex(min_merge=1000, merge_fraction=0.1)
    index.add(np.arange(20_000), rng.integers(0, 256, (20_000, 32), dtype=np.uint8))
    main = index._hashes  # the built main segment
    index.add(np.arange(20_000, 20_500), rng.integers(0, 256, (500, 32), dtype=np.uint8))
    assert index._hashes is main  # no rebuild: the 500 went to the delta
    assert index.stats()["delta_rows"] == 500
    index.remove(np.arange(0, 100))
    assert index._hashes is main and index.stats()["removed_rows"] == 100
    assert len(index) == 20_400
    index.add(np.arange(30_000, 32_000), rng.integers(0, 256, (2_000, 32), dtype=np.uint8))
    assert index._hashes is not main  # delta passed max(1000, 10%): merged
    assert index.stats() | {"memory_bytes": 0, "prefix_bits": 0, "inline_bits": 0} == {
        "main_rows": 22_400,
        "removed_rows": 0,
        "delta_rows": 0,
        "prefix_bits": 0,
        "inline_bits": 0,
        "offset_bytes": 2,
        "row_bytes": 3,
        "memory_bytes": 0,
    }
