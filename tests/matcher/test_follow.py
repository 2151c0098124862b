"""A long-running matcher follows the store by entry ids: `refresh()` keeps its indexes in
memory and applies added and removed entries and bank changes, without reopening them."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
from sqlalchemy import delete

from childguard.banks import (
    EntryRecord,
    create_bank,
    delete_entries,
    import_records,
    set_entry_disabled,
    update_bank,
)
from childguard.matcher import Matcher
from childguard.matcher.bank_index import REMOVAL_CHECK_SECONDS
from childguard.store.db import Store
from childguard.store.models import BankEntry

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


def test_a_saved_index_opens_memory_mapped_and_follows(store: Store, tmp_path: Path) -> None:
    """The service's way: the saved index is mapped, not read; a restart syncs only the
    entries added and removed since the save, and adds and removals work on the mapped index."""
    create_bank(store, "b", "known-abuse", actor="t")
    saved = [_hex() for _ in range(50)]
    import_records(store, "b", [EntryRecord("pdq", v) for v in saved], actor="t")
    Matcher(store, index_base=tmp_path).save()

    tail = _hex()
    import_records(store, "b", [EntryRecord("pdq", tail)], actor="t")
    delete_entries(store, "b", [("pdq", saved[0])], actor="t")
    matcher = Matcher(store, index_base=tmp_path, mmap=True)
    report = matcher.last_sync["pdq"]
    assert (report.rebuilt, report.added, report.removed, report.size) == (False, 1, 1, 50)
    index = matcher.indexes["pdq"].index
    assert isinstance(index._hashes, np.memmap)  # type: ignore[attr-defined]
    assert matcher.match_hash("pdq", tail).matched
    assert matcher.match_hash("pdq", saved[1]).matched
    assert not matcher.match_hash("pdq", saved[0]).matched

    delete_entries(store, "b", [("pdq", saved[2])], actor="t")
    later = _hex()
    import_records(store, "b", [EntryRecord("pdq", later)], actor="t")
    assert (matcher.refresh()["pdq"].added, matcher.last_sync["pdq"].removed) == (1, 1)
    assert not matcher.match_hash("pdq", saved[2]).matched
    assert matcher.match_hash("pdq", later).matched
    assert isinstance(index._hashes, np.memmap)  # type: ignore[attr-defined]
    matcher.save()  # over the files it maps: the mapping keeps the old copy
    again = Matcher(store, index_base=tmp_path, mmap=True)
    assert again.last_sync["pdq"] == type(report)(False, 0, 0, 50)
    assert again.match_hash("pdq", later).matched and matcher.match_hash("pdq", saved[3]).matched


def test_a_disabled_entry_stops_matching_on_every_follower(store: Store, tmp_path: Path) -> None:
    """Two matchers on one store (two workers): an entry disabled through one stops matching
    on the other at its next refresh, and matches again once enabled or once its time passes."""
    create_bank(store, "b", "known-abuse", actor="t")
    value, other = _hex(), _hex()
    import_records(store, "b", [EntryRecord("pdq", value), EntryRecord("pdq", other)], actor="t")
    one, two = Matcher(store, index_base=tmp_path), Matcher(store, index_base=tmp_path)
    entry_id = one.match_hash("pdq", value).matches[0].entry_id
    assert two.match_hash("pdq", value).matched  # cached by the follower

    assert set_entry_disabled(store, "b", entry_id, 0, actor="t")
    two.refresh()
    assert not two.match_hash("pdq", value).matched
    assert two.match_hash("pdq", other).matched
    assert two.refresh()["pdq"].size == 2  # still indexed: only left out of matches

    assert set_entry_disabled(store, "b", entry_id, None, actor="t")
    two.refresh()
    assert two.match_hash("pdq", value).matched

    soon = int(time.time()) + 2
    assert set_entry_disabled(store, "b", entry_id, soon, actor="t")
    two.refresh()
    assert not two.match_hash("pdq", value).matched
    time.sleep(max(0.0, soon - time.time()) + 0.05)
    assert two.match_hash("pdq", value).matched  # no refresh needed: the time has passed
    assert not set_entry_disabled(store, "b", entry_id + 100, 0, actor="t")


def test_following_reads_only_the_tail(store: Store, tmp_path: Path) -> None:
    """Each index's watermark follows the newest entry of any type (an index with no entries
    of its own reads only the tail too); removals are looked for after an audited write,
    and at least every REMOVAL_CHECK_SECONDS for a row deleted with no audit event."""
    create_bank(store, "b", "known-abuse", actor="t")
    values = [_hex() for _ in range(5)]
    import_records(store, "b", [EntryRecord("pdq", v) for v in values], actor="t")
    matcher = Matcher(store, index_base=tmp_path)
    newest = matcher.indexes["pdq"].max_entry_id
    assert matcher.indexes["vpdq"].max_entry_id == newest  # no vPDQ entries, same watermark
    import_records(store, "b", [EntryRecord("md5", "a" * 32)], actor="t")
    matcher.refresh()
    assert matcher.indexes["vpdq"].max_entry_id == matcher.indexes["pdq"].max_entry_id > newest

    gone = matcher.match_hash("pdq", values[0]).matches[0].entry_id
    with store.engine.begin() as connection:  # a writer that leaves no audit event
        connection.execute(delete(BankEntry).where(BankEntry.id == gone))
    assert matcher.refresh()["pdq"].removed == 0  # not looked for yet
    assert matcher.match_hash("pdq", values[0]).matched
    for index in matcher.indexes.values():
        index._checked_at -= REMOVAL_CHECK_SECONDS
    assert matcher.refresh()["pdq"].removed == 1
    assert not matcher.match_hash("pdq", values[0]).matched
    delete_entries(store, "b", [("pdq", values[1])], actor="t")  # audited: the next refresh
    assert matcher.refresh()["pdq"].removed == 1
    assert matcher.match_hash("pdq", values[2]).matched


def test_a_store_emptied_and_refilled_at_the_same_address_gets_its_own_index(
    store_url: str, tmp_path: Path
) -> None:
    """Ids restart after the store is recreated (or emptied, or restored from an older
    backup) at the same address: the saved index of its earlier life must not answer."""
    from sqlalchemy import create_engine, inspect, text

    from childguard.store import open_store

    def fill(value: str) -> None:
        with open_store(store_url) as store:
            create_bank(store, "b", "known-abuse", actor="t")
            import_records(store, "b", [EntryRecord("pdq", value)], actor="t")
            matcher = Matcher(store, index_base=tmp_path)
            assert matcher.match_hash("pdq", value).matched
            matcher.save()

    fill(_hex())
    if store_url.startswith("sqlite"):
        db = Path(store_url.removeprefix("sqlite:///"))
        fresh = tmp_path / "fresh.db"
        open_store(f"sqlite:///{fresh}").close()
        db.unlink()
        fresh.rename(db)
    else:  # every table emptied and its ids restarted, as a recreated database has them
        engine = create_engine(store_url)
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        with engine.begin() as connection:
            names = ", ".join(f'"{t}"' for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
    fill(_hex())  # the same entry id, another hash: found only through a rebuilt index
