"""Matches for tests that drive the crawl's stages directly: a real bank entry in the test's
store and the real `Match` the matcher would make of it."""

from __future__ import annotations

from childguard.banks import (
    BankNotFound,
    EntryRecord,
    create_bank,
    get_bank,
    get_entries,
    import_records,
    iter_signals,
)
from childguard.matcher.results import Match
from childguard.store import Store


def entry_match(
    store: Store,
    *,
    signal_type: str = "pdq",
    value: str = "0" * 64,
    distance: int = 0,
    bank: str = "b",
    bank_kind: str = "protected",
    organisation: str | None = None,
) -> Match:
    """A match on the entry (signal_type, value) of `bank`, created if it is not there."""
    try:
        get_bank(store, bank)
    except BankNotFound:
        create_bank(store, bank, bank_kind, actor="t")
    import_records(
        store, bank, [EntryRecord(signal_type, value)], actor="t", organisation=organisation
    )
    (entry_id,) = [
        i for i, t, v in iter_signals(store, banks=[bank]) if (t, v) == (signal_type, value)
    ]
    entry = get_entries(store, [entry_id])[entry_id]
    return Match.of(entry, distance=distance, query_value=value, variant="original", threshold=31)
