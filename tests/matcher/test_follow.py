"""A long-running matcher follows the store by entry ids: `refresh()` keeps its indexes in
memory and applies added and removed entries and bank changes, without reopening them."""

from __future__ import annotations

import random
from pathlib import Path

from childguard.banks import EntryRecord, create_bank, delete_entries, import_records, update_bank
from childguard.matcher import Matcher
from childguard.store.db import Store

RNG = random.Random(7)


def _hex() -> str:
    return f"{RNG.getrandbits(256):064x}"


def test_refresh_follows_the_store_in_memory(store: Store, tmp_path: Path) -> None:
    create_bank(store, "b", "known-abuse", actor="t")
    first = _hex()
    import_records(store, "b", [EntryRecord("pdq", first)], actor="t")
    matcher = Matcher(store, index_base=tmp_path)
    index = matcher.indexes["pdq"]
    assert matcher.match_hash("pdq", first).matched

    second = _hex()
    import_records(store, "b", [EntryRecord("pdq", second)], actor="t")
    assert not matcher.match_hash("pdq", second).matched
    report = matcher.refresh()["pdq"]
    assert (report.rebuilt, report.added, report.removed, report.size) == (False, 1, 0, 2)
    assert matcher.indexes["pdq"] is index
    assert matcher.match_hash("pdq", second).matched

    delete_entries(store, "b", [("pdq", first)], actor="t")
    assert matcher.refresh()["pdq"].removed == 1
    assert not matcher.match_hash("pdq", first).matched

    update_bank(store, "b", enabled=False, actor="t")
    matcher.refresh()
    assert not matcher.match_hash("pdq", second).matched
    assert matcher.refresh()["pdq"].added == 0
