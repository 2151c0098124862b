"""Bad input to PdqIndex gets a clear error and leaves the index as it was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import childguard.index._mih as mih
from childguard.index import PdqIndex


def _index() -> PdqIndex:
    rng = np.random.default_rng(0)
    index = PdqIndex(min_merge=0)
    index.add(np.arange(100), rng.integers(0, 256, (100, 32), dtype=np.uint8))
    return index


@pytest.mark.parametrize(
    "hashes",
    [
        np.zeros((3, 31), dtype=np.uint8),
        np.zeros((3, 32), dtype=np.int64),
        np.zeros(32, dtype=np.uint8),
        np.zeros((3, 32, 1), dtype=np.uint8),
    ],
)
def test_add_rejects_wrong_hash_arrays(hashes: np.ndarray) -> None:
    index = _index()
    with pytest.raises(ValueError, match="packed PDQ"):
        index.add(np.arange(3), hashes)
    assert len(index) == 100


def test_add_rejects_mismatched_or_non_integer_ids() -> None:
    index = _index()
    with pytest.raises(ValueError, match="3 ids for 2 hashes"):
        index.add(np.arange(3), np.zeros((2, 32), dtype=np.uint8))
    with pytest.raises(ValueError, match="integer"):
        index.add(np.array([0.5, 1.5]), np.zeros((2, 32), dtype=np.uint8))
    assert len(index) == 100


def test_search_rejects_bad_radius_strategy_and_queries() -> None:
    index = _index()
    q = np.zeros((1, 32), dtype=np.uint8)
    with pytest.raises(ValueError, match="radius"):
        index.search(q, -1)
    with pytest.raises(ValueError, match="radius"):
        index.search(q, 257)
    with pytest.raises(ValueError, match="strategy"):
        index.search(q, 31, strategy="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="queries"):
        index.search(np.zeros((1, 16), dtype=np.uint8), 31)
    assert len(index.search(q[:0], 31)) == 0  # an empty batch is fine


def test_kernel_rejects_inconsistent_arrays() -> None:
    index = _index()
    q = index._hashes[:1].copy()
    args = [
        index._hashes,
        index._ids,
        index._offsets,
        index._bases,
        index._rows,
        3,
        index.prefix_bits,
        index.stats()["inline_bits"],
        None,
        np.zeros((0, 32), np.uint8),
        np.zeros(0, np.int64),
        q,
        31,
        0,
    ]
    bad_rows = list(args)
    bad_rows[4] = index._rows[:, :-3].copy()
    with pytest.raises(ValueError, match="inconsistent"):
        mih.search(*bad_rows)
    bad_type = list(args)
    bad_type[0] = index._hashes.astype(np.int16)
    with pytest.raises(ValueError, match="hashes"):
        mih.search(*bad_type)
    with pytest.raises(TypeError):
        mih.search(*[*args[:11], [1, 2], *args[12:]])
    bad_bases = list(args)
    bad_bases[3] = index._bases[:, :-1].copy()
    with pytest.raises(ValueError, match="inconsistent"):
        mih.search(*bad_bases)
    too_many_inline = list(args)
    too_many_inline[7] = 24  # no bits left for the row number
    with pytest.raises(ValueError, match="inconsistent"):
        mih.search(*too_many_inline)
    qi, ids, dist = mih.search(*args)  # the valid call works
    assert ids.tolist() == [int(index._ids[0])] and dist.tolist() == [0] and qi.tolist() == [0]


@pytest.mark.parametrize("damage", ["missing_meta", "truncated_rows", "bad_meta", "wrong_format"])
def test_load_rejects_damaged_directories(tmp_path: Path, damage: str) -> None:
    index = _index()
    index.save(tmp_path)
    if damage == "missing_meta":
        (tmp_path / "meta.json").unlink()
    elif damage == "truncated_rows":
        np.save(tmp_path / "rows.npy", np.zeros((7, 10), dtype=np.uint8))
    elif damage == "bad_meta":
        (tmp_path / "meta.json").write_text("{not json")
    else:
        (tmp_path / "meta.json").write_text('{"format": "faiss", "version": 1}')
    with pytest.raises(ValueError, match=str(tmp_path)):
        PdqIndex.load(tmp_path)


def test_save_load_roundtrip_keeps_delta_and_tombstones(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    index = PdqIndex(min_merge=10_000)
    index.add(np.arange(20_000), rng.integers(0, 256, (20_000, 32), dtype=np.uint8))
    extra = rng.integers(0, 256, (50, 32), dtype=np.uint8)
    index.add(np.arange(20_000, 20_050), extra)
    index.remove(np.array([3, 20_001]))
    index.save(tmp_path)
    for mmap in (False, True):
        loaded = PdqIndex.load(tmp_path, mmap=mmap)
        assert loaded.stats() == index.stats()
        q = np.concatenate([index._hashes[:50], extra])
        want = index.search(q, 10).sorted().ids.tolist()
        assert loaded.search(q, 10).sorted().ids.tolist() == want
        assert 3 not in loaded.search(q, 256).ids  # tombstone kept
        loaded.remove(np.array([20_010]))  # a memory-mapped index still accepts changes
        assert len(loaded) == len(index) - 1
