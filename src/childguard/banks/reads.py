# Owns reading bank entries: streaming signals for indexes, entries by id, exact look-up, and
# entries as records for exporters.
"""Bank entry reads. Streams use a server-side cursor and build no ORM objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from childguard.banks.catalog import find_bank
from childguard.banks.records import EntryRecord, canonical_signal, lookup_key
from childguard.store.db import Store
from childguard.store.models import Bank, BankEntry

STREAM_BATCH = 50_000
# The metadata key that disables one entry: a Unix time (seconds) until which it does not
# match, or 0 for until it is enabled again. An entry without it matches.
DISABLED_UNTIL = "disabled_until"


@dataclass(frozen=True)
class EntryView:
    """One bank entry with the bank facts a match needs (name, kind, threshold, enabled)."""

    id: int
    bank_id: int
    bank_name: str
    bank_kind: str
    bank_pdq_threshold: int
    bank_enabled: bool
    signal_type: str
    value: str
    source: str | None
    organisation: str | None
    imported_at: datetime
    original_id: str | None
    classification_scheme: str | None
    classification_label: str | None
    metadata: dict[str, Any] | None

    @property
    def disabled_until(self) -> int | None:
        """When the entry's disabling ends (a Unix time; 0: until it is enabled again), or
        None for an entry that was never disabled."""
        raw = (self.metadata or {}).get(DISABLED_UNTIL)
        if raw is None or isinstance(raw, bool):
            return None
        try:
            return int(raw)
        except (TypeError, ValueError):
            return None

    def matches_at(self, now: float) -> bool:
        """Whether the entry may match at Unix time `now` (its bank's state aside)."""
        until = self.disabled_until
        return until is None or (until != 0 and until <= now)


def _signal_query(
    session: Session,
    banks: Sequence[str | int] | None,
    signal_types: Sequence[str] | None,
    enabled_only: bool,
    after_id: int | None,
) -> Select[int, str, str]:
    value = func.coalesce(BankEntry.payload, BankEntry.value)
    query = select(BankEntry.id, BankEntry.signal_type, value).order_by(BankEntry.id)
    if banks is not None:
        ids = [find_bank(session, b).id for b in banks]
        query = query.where(BankEntry.bank_id.in_(ids))
    if signal_types is not None:
        query = query.where(BankEntry.signal_type.in_(list(signal_types)))
    if enabled_only:
        query = query.join(Bank, Bank.id == BankEntry.bank_id).where(Bank.enabled.is_(True))
    if after_id is not None:
        query = query.where(BankEntry.id > after_id)
    return query


def iter_signal_batches(
    store: Store,
    *,
    banks: Sequence[str | int] | None = None,
    signal_types: Sequence[str] | None = None,
    enabled_only: bool = False,
    after_id: int | None = None,
    batch_size: int = STREAM_BATCH,
) -> Iterator[list[tuple[int, str, str]]]:
    """Lists of (entry_id, signal_type, value) in id order, streamed with a server-side cursor.

    No ORM objects are built, so 10M rows stream in constant memory. `after_id` gives only
    entries added after that id (ids only grow), for incremental index updates.
    """
    with Session(store.engine) as session:
        query = _signal_query(session, banks, signal_types, enabled_only, after_id)
        result = session.execute(query, execution_options={"yield_per": batch_size})
        for part in result.partitions():
            yield [(int(r[0]), r[1], r[2]) for r in part]


def iter_signals(
    store: Store,
    *,
    banks: Sequence[str | int] | None = None,
    signal_types: Sequence[str] | None = None,
    enabled_only: bool = False,
    after_id: int | None = None,
) -> Iterator[tuple[int, str, str]]:
    """(entry_id, signal_type, value) for every matching entry, in id order; see the batches."""
    for batch in iter_signal_batches(
        store, banks=banks, signal_types=signal_types, enabled_only=enabled_only, after_id=after_id
    ):
        yield from batch


# EntryView's fields in order, as columns: a look-up builds no ORM objects (the matcher asks
# for the entries of its hits on every query).
_VIEW_COLUMNS = tuple(
    column.label(name)
    for name, column in (
        ("id", BankEntry.id),
        ("bank_id", Bank.id),
        ("bank_name", Bank.name),
        ("bank_kind", Bank.kind),
        ("bank_pdq_threshold", Bank.pdq_threshold),
        ("bank_enabled", Bank.enabled),
        ("signal_type", BankEntry.signal_type),
        ("value", func.coalesce(BankEntry.payload, BankEntry.value)),
        ("source", BankEntry.source),
        ("organisation", BankEntry.organisation),
        ("imported_at", BankEntry.imported_at),
        ("original_id", BankEntry.original_id),
        ("classification_scheme", BankEntry.classification_scheme),
        ("classification_label", BankEntry.classification_label),
        ("metadata", BankEntry.meta),
    )
)
_VIEW_QUERY = select(*_VIEW_COLUMNS).join(Bank, Bank.id == BankEntry.bank_id)


def get_entries(store: Store, entry_ids: Iterable[int]) -> dict[int, EntryView]:
    """Entries by id, with their bank; ids that no longer exist are left out."""
    wanted = list(dict.fromkeys(int(i) for i in entry_ids))
    out: dict[int, EntryView] = {}
    if not wanted:
        return out
    with store.engine.connect() as connection:
        for start in range(0, len(wanted), 500):
            rows = connection.execute(
                _VIEW_QUERY.where(BankEntry.id.in_(wanted[start : start + 500]))
            )
            for row in rows:
                out[int(row[0])] = EntryView(*row)
    return out


def lookup_values(store: Store, signal_type: str, values: Sequence[str]) -> list[tuple[int, str]]:
    """(entry id, value) of every entry, in any bank, that holds one of these canonical values
    of one signal type; 500 values a query through the (signal_type, value) index. The one
    exact look-up: the matcher and `find_exact` use it."""
    keys = {lookup_key(signal_type, v): v for v in dict.fromkeys(values)}
    wanted = list(keys)
    found: list[tuple[int, str]] = []
    with store.session() as session:
        for start in range(0, len(wanted), 500):
            rows = session.execute(
                select(BankEntry.id, BankEntry.value).where(
                    BankEntry.signal_type == signal_type,
                    BankEntry.value.in_(wanted[start : start + 500]),
                )
            )
            found += [(int(entry_id), keys[key]) for entry_id, key in rows]
    return sorted(found)


def find_exact(
    store: Store, signal_type: str, value: str, *, enabled_only: bool = True
) -> list[EntryView]:
    """Entries holding exactly this signal, across banks, by entry id."""
    t, v = canonical_signal(signal_type, value)
    ids = [entry_id for entry_id, _ in lookup_values(store, t, [v])]
    views = get_entries(store, ids)
    return [views[i] for i in ids if i in views and (views[i].bank_enabled or not enabled_only)]


def iter_entry_records(
    store: Store,
    bank: str | int,
    *,
    signal_types: Sequence[str] | None = None,
    batch_size: int = 10_000,
) -> Iterator[EntryRecord]:
    """Every entry of a bank as an EntryRecord (what exporters write), in id order, streamed."""
    cols = [
        BankEntry.signal_type,
        func.coalesce(BankEntry.payload, BankEntry.value),
        BankEntry.source,
        BankEntry.organisation,
        BankEntry.original_id,
        BankEntry.classification_scheme,
        BankEntry.classification_label,
        BankEntry.meta,
        BankEntry.imported_at,
    ]
    with Session(store.engine) as session:
        found = find_bank(session, bank)
        query = select(*cols).where(BankEntry.bank_id == found.id).order_by(BankEntry.id)
        if signal_types is not None:
            query = query.where(BankEntry.signal_type.in_(list(signal_types)))
        result = session.execute(query, execution_options={"yield_per": batch_size})
        for row in result:
            yield EntryRecord(*row)
