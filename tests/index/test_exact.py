"""ExactIndex: lookup, duplicates, removal, validation and save/load."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from childguard.index import ExactIndex


def _md5(i: int) -> str:
    return hashlib.md5(str(i).encode()).hexdigest()


def test_lookup_finds_every_id_of_a_value_and_nothing_else() -> None:
    index = ExactIndex("md5")
    index.add([1, 2, 3], [_md5(1), _md5(2), _md5(1).upper()])  # case does not matter
    assert sorted(index.lookup(_md5(1))) == [1, 3]
    assert index.lookup(bytes.fromhex(_md5(2))) == [2]
    assert index.lookup(_md5(99)) == []
    assert _md5(2) in index and _md5(99) not in index
    assert len(index) == 3


def test_remove_drops_ids_everywhere() -> None:
    index = ExactIndex("sha1")
    values = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(5)]
    index.add(range(5), values)
    index.add([10], [values[0]])
    assert index.remove([0, 10, 77]) == 2
    assert index.lookup(values[0]) == []
    assert len(index) == 4


@pytest.mark.parametrize("bad", ["abc", "zz" * 16, "00" * 20, b"\x00" * 15])
def test_bad_values_are_rejected_and_nothing_is_added(bad: str | bytes) -> None:
    index = ExactIndex("md5")
    with pytest.raises(ValueError, match="md5"):
        index.add([1, 2], [_md5(1), bad])
    assert len(index) == 0 and index.lookup(_md5(1)) == []


def test_unknown_type_and_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="unknown exact signal type"):
        ExactIndex("pdq")
    with pytest.raises(ValueError, match="2 ids for 1 values"):
        ExactIndex("md5").add([1, 2], [_md5(1)])


def test_save_load_roundtrip(tmp_path: Path) -> None:
    index = ExactIndex("sha256")
    values = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(1000)]
    index.add(range(1000), values)
    index.add([5000], [values[7]])
    index.save(tmp_path)
    loaded = ExactIndex.load(tmp_path)
    assert loaded.signal_type == "sha256" and len(loaded) == 1001
    assert sorted(loaded.lookup(values[7])) == [7, 5000]
    assert all(loaded.lookup(v) == index.lookup(v) for v in values[:100])


def test_load_rejects_a_damaged_directory(tmp_path: Path) -> None:
    ExactIndex("md5").save(tmp_path)
    (tmp_path / "meta.json").write_text("[]")
    with pytest.raises(ValueError, match=str(tmp_path)):
        ExactIndex.load(tmp_path)
