"""The session-level entry writes that other packages use inside their own transaction:
ensure_entries (look up or insert, in input order, metadata on new entries only) and
remove_entries_by_id; neither commits."""

from __future__ import annotations

from sqlalchemy import select

from childguard import banks
from childguard.store import Store
from childguard.store.models import BankEntry

A = "a" * 32
B = "b" * 32
PDQ = "f" * 64


def test_ensure_entries_reuses_existing_and_keeps_order(store: Store) -> None:
    bank = banks.create_bank(store, "org", "protected", actor="t")
    with store.session() as s:
        first = banks.ensure_entries(
            s,
            bank.id,
            [("md5", A), ("pdq", PDQ)],
            source="src",
            organisation="org",
            metadata={"photo_id": 1},
        )
    with store.session() as s:
        again = banks.ensure_entries(
            s,
            bank.id,
            [("md5", B), ("pdq", PDQ), ("md5", A), ("md5", B)],
            source="other",
            organisation=None,
            metadata={"photo_id": 2},
        )
    assert again[1:3] == [first[1], first[0]]
    assert again[0] == again[3] and again[0] not in first
    with store.session() as s:
        rows = {e.id: e for e in s.scalars(select(BankEntry))}
    assert len(rows) == 3
    assert (rows[first[0]].source, rows[first[0]].meta) == ("src", {"photo_id": 1})
    assert (rows[again[0]].source, rows[again[0]].organisation) == ("other", None)
    assert rows[again[0]].meta == {"photo_id": 2}


def test_ensure_entries_is_per_bank_and_per_type(store: Store) -> None:
    one = banks.create_bank(store, "one", "protected", actor="t")
    two = banks.create_bank(store, "two", "protected", actor="t")
    sha256 = "c" * 64
    with store.session() as s:
        [in_one] = banks.ensure_entries(
            s, one.id, [("sha256", sha256)], source=None, organisation=None
        )
        [in_two] = banks.ensure_entries(
            s, two.id, [("sha256", sha256)], source=None, organisation=None
        )
        [as_pdq] = banks.ensure_entries(
            s, one.id, [("pdq", sha256)], source=None, organisation=None
        )
    assert len({in_one, in_two, as_pdq}) == 3


def test_session_functions_do_not_commit(store: Store) -> None:
    bank = banks.create_bank(store, "org", "protected", actor="t")
    session = store.sessions()
    try:
        banks.ensure_entries(session, bank.id, [("md5", A)], source=None, organisation=None)
        session.rollback()
    finally:
        session.close()
    assert banks.bank_stats(store, "org").total == 0


def test_remove_entries_by_id(store: Store) -> None:
    bank = banks.create_bank(store, "org", "protected", actor="t")
    with store.session() as s:
        ids = banks.ensure_entries(
            s, bank.id, [("md5", A), ("md5", B)], source=None, organisation=None
        )
    with store.session() as s:
        assert banks.remove_entries_by_id(s, [ids[0], ids[0], 10_000]) == 1
        assert banks.remove_entries_by_id(s, []) == 0
    with store.session() as s:
        assert list(s.scalars(select(BankEntry.id))) == [ids[1]]
