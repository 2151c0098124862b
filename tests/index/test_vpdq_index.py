"""VpdqIndex against the brute-force reference (`VpdqSignal.compare` on every pair):
thresholds, incremental add, replace and remove, save and load."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import pdq_bits
from childguard.index.vpdq import VpdqIndex, VpdqThreshold
from childguard.signals.vpdq import VpdqFrame, VpdqSignal, frames_to_value

rng = random.Random(11)


def rand_hex() -> str:
    return pdq_bits.rand_hex(rng)


def flip(hex_: str, bits: int) -> str:
    return pdq_bits.flip(hex_, bits, rng)


def video(hexes: list[str], weak: int = 0) -> str:
    frames = [VpdqFrame(h, 100, float(i)) for i, h in enumerate(hexes)]
    frames += [VpdqFrame(rand_hex(), 20, 99.0) for _ in range(weak)]
    return frames_to_value(frames)


def corpus(n_bank: int = 40, n_query: int = 25) -> tuple[list[int], list[str], list[str]]:
    """Bank videos of random frames; queries copy part of one (frames perturbed) or none."""
    bank_frames = [[rand_hex() for _ in range(rng.randint(1, 10))] for _ in range(n_bank)]
    ids = rng.sample(range(1, 10**9), n_bank)
    bank = [video(f, weak=rng.randint(0, 2)) for f in bank_frames]
    queries = []
    for _ in range(n_query):
        src = rng.choice(bank_frames)
        kept = [flip(h, rng.choice([0, 5, 20, 31, 32, 50])) for h in src if rng.random() < 0.8]
        kept += [rand_hex() for _ in range(rng.randint(0, 3))]
        queries.append(video(kept or [rand_hex()]))
    return ids, bank, queries


def reference(
    ids: list[int], bank: list[str], queries: list[str], threshold: VpdqThreshold
) -> list[dict[int, tuple[float, float]]]:
    out = []
    for q in queries:
        hits = {}
        for i, b in zip(ids, bank, strict=True):
            c = VpdqSignal.compare(q, b, threshold)
            if c.match:
                assert c.detail is not None
                hits[i] = (c.detail["query_match_percent"], c.detail["bank_match_percent"])
        out.append(hits)
    return out


def got(index: VpdqIndex, queries: list[str], threshold: VpdqThreshold) -> list[dict]:
    out = []
    for hits in index.query(queries, threshold):
        d = {}
        for entry_id, c in hits:
            assert c.match and c.detail is not None
            d[entry_id] = (c.detail["query_match_percent"], c.detail["bank_match_percent"])
        out.append(d)
    return out


@pytest.mark.parametrize(
    "threshold",
    [VpdqThreshold(80, 0), VpdqThreshold(50, 50), VpdqThreshold(0.001, 0), VpdqThreshold(100, 100)],
)
def test_index_equals_brute_force(threshold: VpdqThreshold) -> None:
    ids, bank, queries = corpus()
    index = VpdqIndex.from_values(np.array(ids), bank)
    assert len(index) == len(ids)
    assert sorted(index.live_ids().tolist()) == sorted(ids)
    assert got(index, queries, threshold) == reference(ids, bank, queries, threshold)


def test_incremental_add_remove_replace_and_save_load(tmp_path: Path) -> None:
    ids, bank, queries = corpus()
    t = VpdqThreshold(50, 0)
    index = VpdqIndex.from_values(np.array(ids[:20]), bank[:20])
    index.add_values(np.array(ids[20:]), bank[20:])
    assert got(index, queries, t) == reference(ids, bank, queries, t)

    gone = ids[::3]
    assert index.remove(np.array([*gone, 123])) == len(gone)
    kept = [(i, b) for i, b in zip(ids, bank, strict=True) if i not in gone]
    k_ids, k_bank = [i for i, _ in kept], [b for _, b in kept]
    assert len(index) == len(k_ids)
    assert got(index, queries, t) == reference(k_ids, k_bank, queries, t)

    # Adding an id again replaces its video.
    index.add_values(np.array([k_ids[0]]), [bank[-1]])
    k_bank[0] = bank[-1]
    assert got(index, queries, t) == reference(k_ids, k_bank, queries, t)

    index.save(tmp_path / "vpdq")
    loaded = VpdqIndex.load(tmp_path / "vpdq")
    assert len(loaded) == len(index)
    assert got(loaded, queries, t) == reference(k_ids, k_bank, queries, t)
    loaded.add_values(np.array([777]), [queries[0]])
    assert 777 in {i for i, _ in loaded.query([queries[0]], VpdqThreshold(100, 100))[0]}


def test_videos_without_good_frames_are_held_but_never_match() -> None:
    weak_only = frames_to_value([VpdqFrame(rand_hex(), 10, 0.0)])
    index = VpdqIndex.from_values(np.array([5]), [weak_only])
    assert len(index) == 1 and index.frame_count == 0
    assert index.query([weak_only], VpdqThreshold(0, 0)) == [[]]


def test_empty_index_and_empty_query() -> None:
    index = VpdqIndex()
    assert index.query([video([rand_hex()])], None) == [[]]
    assert index.query([], None) == []


def test_results_are_best_first_and_index_is_the_signal_types() -> None:
    assert VpdqSignal.index_class() is VpdqIndex
    frames = [rand_hex() for _ in range(4)]
    index = VpdqIndex.from_values(np.array([1, 2]), [video(frames[:2]), video(frames)])
    hits = index.query([video(frames)], VpdqThreshold(10, 0))[0]
    assert [i for i, _ in hits] == [2, 1]
    assert hits[0][1].distance == 0 and hits[1][1].distance == 50


def test_load_refuses_other_folders(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a saved vPDQ index"):
        VpdqIndex.load(tmp_path)


def test_query_wants_a_vpdq_threshold() -> None:
    with pytest.raises(TypeError):
        VpdqIndex().query([video([rand_hex()])], 31)
