"""Every layout PdqIndex chooses by size returns what brute force returns: narrow (uint16) and
wide bucket offsets, inline key bits of every width, the batched flat scan at every batch
size, and indexes saved in the first format (no inline bits, uint32 offsets)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import childguard.index._mih as mih
from childguard.index import PdqIndex
from childguard.index.pdq import N_TABLES, default_prefix_bits
from childguard.index.reference import brute_force_search

from .helpers import assert_same, check_against_reference, flip_exactly


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(1, 300),
    m=st.integers(1, 19),
    radius=st.sampled_from([0, 7, 8, 15, 31, 32, 47, 70]),
)
def test_every_batch_size_and_one_query_a_call(seed: int, n: int, m: int, radius: int) -> None:
    """Batches of 1..19 queries (full passes of 8 and a remainder) through every strategy, and
    each query alone, give exactly brute force's pairs."""
    rng = np.random.default_rng(seed)
    hashes = flip_exactly(
        rng.integers(0, 256, (1, 32), dtype=np.uint8).repeat(n, 0), rng.integers(0, 60, n), rng
    )
    ids = rng.permutation(n).astype(np.int64)
    index = PdqIndex(min_merge=0)
    index.add(ids, hashes)
    queries = flip_exactly(hashes[rng.integers(0, n, m)], rng.integers(0, 40, m), rng)
    check_against_reference(index, ids, hashes, queries, radius)
    want = brute_force_search(ids, hashes, queries, radius).sorted()
    for i in range(m):
        alone = index.search(queries[i : i + 1], radius).sorted()
        mask = want.query_index == i
        assert alone.ids.tolist() == want.ids[mask].tolist()
        assert alone.distances.tolist() == want.distances[mask].tolist()


def test_crowded_buckets_fall_back_to_wide_offsets() -> None:
    """70,000 copies of one hash put 70,000 rows in one bucket group: more than uint16
    offsets hold, so the index uses uint32 offsets and still answers exactly."""
    rng = np.random.default_rng(4)
    one = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    hashes = np.concatenate([one.repeat(70_000, 0), rng.integers(0, 256, (5_000, 32), np.uint8)])
    ids = np.arange(hashes.shape[0], dtype=np.int64)
    index = PdqIndex.build(ids, hashes)
    assert index.stats()["offset_bytes"] == 4
    queries = np.concatenate([flip_exactly(one, 12, rng), hashes[70_000:70_010]])
    for strategy in ("mih", "linear", "auto"):
        got = index.search(queries, 31, strategy=strategy)
        assert_same(got, brute_force_search(ids, hashes, queries, 31))
    assert int((index.search(one, 0).ids < 70_000).sum()) == 70_000


def test_narrow_offsets_buy_a_wider_key_within_the_budget() -> None:
    for n in (1_000_000, 10_000_000):
        assert default_prefix_bits(n, 4, 3, narrow=True) == default_prefix_bits(n, 4, 3) + 1
    rng = np.random.default_rng(8)
    n = 100_000
    hashes = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    ids = np.arange(n, dtype=np.int64)
    index = PdqIndex.build(ids, hashes)
    stats = index.stats()
    assert stats["offset_bytes"] == 2 and stats["inline_bits"] == 24 - 17
    assert stats["prefix_bits"] == default_prefix_bits(n, 4, 3, narrow=True)
    assert index.memory_bytes() / n <= 64
    queries = flip_exactly(hashes[:25], rng.integers(0, 32, 25), rng)
    check_against_reference(index, ids, hashes, queries, 31)


def _write_version_1(path: Path, ids: np.ndarray, hashes: np.ndarray, p: int) -> None:
    """An index directory as the first format wrote it: uint32 offsets, rows without inline
    bits, no bases file."""
    off0, order = mih.build_table(hashes, 0, p, 4, 0)
    perm = order.view(np.uint32)
    h, i = hashes[perm], ids[perm]
    offsets = np.empty((N_TABLES, (1 << p) + 1), dtype=np.uint32)
    rows = np.empty((N_TABLES - 1, h.shape[0] * 3), dtype=np.uint8)
    offsets[0] = off0
    for t in range(1, N_TABLES):
        offsets[t], rows[t - 1] = mih.build_table(h, t, p, 3, 0)
    path.mkdir()
    arrays = {
        "hashes": h,
        "ids": i,
        "offsets": offsets,
        "rows": rows,
        "dead": np.zeros((h.shape[0] + 7) // 8, np.uint8),
        "delta_hashes": np.zeros((0, 32), np.uint8),
        "delta_ids": np.zeros(0, np.int64),
    }
    for name, a in arrays.items():
        np.save(path / f"{name}.npy", a)
    meta = {
        "format": "childguard-pdq-mih",
        "version": 1,
        "prefix_bits": p,
        "fixed_prefix_bits": None,
        "row_bytes": 3,
        "n_dead": 0,
        "merge_fraction": 0.1,
        "min_merge": 50_000,
        "compact_fraction": 0.2,
    }
    (path / "meta.json").write_text(json.dumps(meta))


def test_an_index_saved_in_the_first_format_still_loads_and_answers(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    hashes = flip_exactly(
        rng.integers(0, 256, (40, 32), dtype=np.uint8).repeat(100, 0),
        rng.integers(0, 40, 4000),
        rng,
    )
    ids = rng.permutation(4000).astype(np.int64)
    _write_version_1(tmp_path / "v1", ids, hashes, 9)
    for mmap in (False, True):
        loaded = PdqIndex.load(tmp_path / "v1", mmap=mmap)
        assert loaded.stats()["inline_bits"] == 0 and loaded.stats()["offset_bytes"] == 4
        queries = flip_exactly(hashes[:20], 20, rng)
        check_against_reference(loaded, ids, hashes, queries, 31)
    loaded.add(np.array([99_999]), hashes[:1])  # and it takes changes, saved as the new format
    loaded.save(tmp_path / "v2")
    again = PdqIndex.load(tmp_path / "v2")
    assert 99_999 in again.search(hashes[:1], 0).ids
