"""A bank holding exactly one PDQ hash matches before and after its index is saved and loaded
again (in RAM and memory-mapped). HMA's PDQ index loses a one-hash bank on reload; ours must
not."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.index import PdqIndex
from childguard.index.pdq import pack_hex
from childguard.matcher import Matcher
from childguard.store.db import Store

RNG = random.Random(11)


def _near(value: str, bits: int) -> str:
    number = int(value, 16)
    for bit in RNG.sample(range(256), bits):
        number ^= 1 << bit
    return f"{number:064x}"


@pytest.mark.parametrize("mmap", [False, True], ids=["ram", "mmap"])
def test_a_one_hash_index_survives_save_and_load(tmp_path: Path, mmap: bool) -> None:
    value = f"{RNG.getrandbits(256):064x}"
    index = PdqIndex.build(np.array([42], dtype=np.int64), pack_hex([value]))
    index.save(tmp_path / "one")
    loaded = PdqIndex.load(tmp_path / "one", mmap=mmap)
    assert len(loaded) == 1
    found = loaded.query([_near(value, 9)], 31)[0]
    assert [(entry_id, c.distance) for entry_id, c in found] == [(42, 9)]
    assert loaded.query([_near(value, 40)], 31) == [[]]


def test_a_one_hash_bank_matches_after_the_matcher_restarts(store: Store, tmp_path: Path) -> None:
    create_bank(store, "ONLY_ONE", "known-abuse", actor="t")
    value = f"{RNG.getrandbits(256):064x}"
    import_records(store, "ONLY_ONE", [EntryRecord("pdq", value)], actor="t")
    first = Matcher(store, index_base=tmp_path)
    assert first.match_hash("pdq", _near(value, 5)).matched
    first.save()

    again = Matcher(store, index_base=tmp_path)
    report = again.refresh()["pdq"]
    assert (report.rebuilt, report.added, report.size) == (False, 0, 1)
    matches = again.match_hash("pdq", _near(value, 5)).matches
    assert [(m.bank, m.distance) for m in matches] == [("ONLY_ONE", 5)]
