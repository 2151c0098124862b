# Owns every write of bank entries: adding, importing and removing entries.
"""Bank entry writes. `import_records`, `add_entries` and `delete_entries` take a `Store`, run in
one transaction of their own and are audited; `ensure_entries` and `remove_entries_by_id` work
in the caller's session (the caller owns the transaction and the audit event that explains the
change, e.g. `protect.register`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from childguard.banks.bulk import check_bulk_dialect, entry_row, import_lock, insert_batch
from childguard.banks.catalog import find_bank
from childguard.banks.reads import DISABLED_UNTIL
from childguard.banks.records import EntryRecord, InvalidRecord, lookup_key, stored_form, validated
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.models import BankEntry

BATCH_SIZE = 5_000
_CHUNK = 500


@dataclass(frozen=True)
class ImportResult:
    """What an import did. `already_present` counts valid records that added nothing (re-imports
    and duplicates within the file); `skipped` lists invalid records left out (--skip-invalid)."""

    bank: str
    read: int
    added: int
    already_present: int
    skipped: list[InvalidRecord] = field(default_factory=list)


def import_records(
    store: Store,
    bank: str | int,
    records: Iterable[EntryRecord | InvalidRecord],
    *,
    actor: str,
    skip_invalid: bool = False,
    source: str | None = None,
    organisation: str | None = None,
    audit_details: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    prevalidated: bool = False,
    wait: float = 0.0,
) -> ImportResult:
    """Add records to a bank in one transaction, idempotently.

    Each record is validated (type and canonical value). An invalid record raises
    InputFormatError with its line or record number and nothing is imported, unless
    `skip_invalid`, where it is left out and listed in the result. `source` and `organisation`
    fill in provenance that the records do not carry. `progress` is called after each batch
    with the number of records read so far. `prevalidated` skips re-validating records that
    come from a `childguard.banks.formats` reader (they validate as they read).

    `added` is what this import really added: rows that a concurrent import wrote first count
    as already present. One import writes to a SQLite store (a PostgreSQL bank) at a time; one
    that finds another writing waits up to `wait` seconds for it, then raises
    `childguard.banks.bulk.ImportBusy` (nothing imported).
    """
    check_bulk_dialect(store)
    skipped: list[InvalidRecord] = []
    read = added = 0
    now = utcnow()
    check = (lambda r: r) if prevalidated else validated
    with store.session() as session:
        bank_id = find_bank(session, bank).id
    with import_lock(store, bank_id, wait=wait), store.session() as session:
        found = find_bank(session, bank_id)
        batch: dict[tuple[str, str], dict[str, Any]] = {}
        for item in records:
            checked = item if isinstance(item, InvalidRecord) else check(item)
            if isinstance(checked, InvalidRecord):
                if not skip_invalid:
                    raise checked.error()
                skipped.append(checked)
                continue
            read += 1
            key = (checked.signal_type, checked.value)
            if key not in batch:
                batch[key] = entry_row(checked, source, organisation)
            if len(batch) >= BATCH_SIZE:
                added += insert_batch(session, batch.values(), found.id, now)
                batch.clear()
                if progress is not None:
                    progress(read)
        if batch:
            added += insert_batch(session, batch.values(), found.id, now)
        result = ImportResult(found.name, read, added, read - added, skipped)
        audit.record(
            session,
            actor=actor,
            action="bank.import",
            object_type="bank",
            object_id=found.id,
            details={
                "name": found.name,
                "read": read,
                "added": added,
                "already_present": read - added,
                "skipped": len(skipped),
                "skipped_first": [s.describe() for s in skipped[:20]],
                **(audit_details or {}),
            },
        )
    if progress is not None:
        progress(read)
    return result


def add_entries(
    store: Store,
    bank: str | int,
    records: Iterable[EntryRecord],
    *,
    actor: str,
    source: str | None = None,
    organisation: str | None = None,
) -> ImportResult:
    """Add entries from code (not a file); an invalid one raises and nothing is added."""
    return import_records(
        store, bank, records, actor=actor, source=source, organisation=organisation
    )


def _ids_of(session: Session, bank_id: int, signals: Iterable[tuple[str, str]]) -> list[int]:
    """Ids of the bank's entries holding these canonical (signal_type, value) pairs."""
    by_type: dict[str, list[str]] = {}
    for signal_type, value in signals:
        by_type.setdefault(signal_type, []).append(lookup_key(signal_type, value))
    ids: list[int] = []
    for signal_type, values in by_type.items():
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), _CHUNK):
            ids.extend(
                session.scalars(
                    select(BankEntry.id).where(
                        BankEntry.bank_id == bank_id,
                        BankEntry.signal_type == signal_type,
                        BankEntry.value.in_(unique[start : start + _CHUNK]),
                    )
                ).all()
            )
    return ids


def delete_entries(
    store: Store,
    bank: str | int,
    signals: Iterable[tuple[str, str]],
    *,
    actor: str,
) -> list[int]:
    """Remove (signal_type, value) pairs from a bank; returns the ids removed (for the index)."""
    with store.session() as session:
        found = find_bank(session, bank)
        pairs = list(signals)
        removed = _ids_of(session, found.id, pairs)
        for start in range(0, len(removed), _CHUNK):
            session.execute(
                delete(BankEntry).where(BankEntry.id.in_(removed[start : start + _CHUNK]))
            )
        audit.record(
            session,
            actor=actor,
            action="bank.delete_entries",
            object_type="bank",
            object_id=found.id,
            details={"name": found.name, "requested": len(pairs), "removed": len(removed)},
        )
    return removed


def ensure_entries(
    session: Session,
    bank_id: int,
    signals: Sequence[tuple[str, str]],
    *,
    source: str | None,
    organisation: str | None,
    metadata: dict[str, Any] | None = None,
) -> list[int]:
    """The entry id of each (signal_type, value) in the bank, in input order, inserting the
    missing ones with this provenance (`metadata` goes on new entries only).

    Values must already be canonical (`childguard.banks.records.canonical_signal`). Existing
    entries are looked up in one query per 500 distinct values; a pair given twice gets the
    same id twice.
    """
    wanted = list(dict.fromkeys((str(t), str(v)) for t, v in signals))
    stored = {pair: stored_form(*pair) for pair in wanted}
    by_key = {(t, stored[(t, v)][0]): (t, v) for t, v in wanted}
    ids: dict[tuple[str, str], int] = {}
    values = list(dict.fromkeys(key for _, key in by_key))
    for start in range(0, len(values), _CHUNK):
        rows = session.execute(
            select(BankEntry.id, BankEntry.signal_type, BankEntry.value).where(
                BankEntry.bank_id == bank_id,
                BankEntry.value.in_(values[start : start + _CHUNK]),
            )
        )
        for entry_id, signal_type, key in rows:
            if (signal_type, key) in by_key:
                ids[by_key[(signal_type, key)]] = int(entry_id)
    new = [
        BankEntry(
            bank_id=bank_id,
            signal_type=signal_type,
            value=stored[(signal_type, value)][0],
            payload=stored[(signal_type, value)][1],
            source=source,
            organisation=organisation,
            meta=dict(metadata) if metadata is not None else None,
        )
        for signal_type, value in wanted
        if (signal_type, value) not in ids
    ]
    if new:
        session.add_all(new)
        session.flush()
        for entry in new:
            ids[by_key[(entry.signal_type, entry.value)]] = entry.id
    return [ids[(str(t), str(v))] for t, v in signals]


def remove_entries_by_id(session: Session, entry_ids: Sequence[int]) -> int:
    """Delete these entries (ids that no longer exist are ignored); returns how many went."""
    unique = list(dict.fromkeys(int(i) for i in entry_ids))
    removed = 0
    for start in range(0, len(unique), _CHUNK):
        result = session.execute(
            delete(BankEntry).where(BankEntry.id.in_(unique[start : start + _CHUNK]))
        )
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


def set_entry_disabled(
    store: Store, bank: str | int, entry_id: int, until: int | None, *, actor: str
) -> bool:
    """Disable one entry of `bank` until the Unix time `until` (0: until enabled again), or
    enable it (`until` None); False when the bank holds no such entry.

    The entry stays in the store and in the indexes; matchers leave it out of their matches.
    The bank's `updated_at` moves too, so every matcher that follows the store drops what it
    cached of the bank's entries at its next refresh."""
    _check_until(until)
    with store.session() as session:
        found = find_bank(session, bank)
        entry = session.get(BankEntry, int(entry_id))
        if entry is None or entry.bank_id != found.id:
            return False
        old = _set_disabled(entry, until)
        found.updated_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="bank.enable_entry" if until is None else "bank.disable_entry",
            object_type="bank",
            object_id=found.id,
            details={"name": found.name, "entry_id": int(entry_id), "old": old, "until": until},
        )
    return True


def set_entries_disabled(
    store: Store,
    bank: str | int,
    signals: Iterable[tuple[str, str]],
    until: int | None,
    *,
    actor: str,
) -> list[int]:
    """`set_entry_disabled` for the bank's entries holding these canonical (signal_type,
    value) pairs, in one transaction and one audit event; returns the ids changed (pairs the
    bank does not hold change nothing)."""
    _check_until(until)
    with store.session() as session:
        found = find_bank(session, bank)
        pairs = list(signals)
        ids = _ids_of(session, found.id, pairs)
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            for entry in session.scalars(select(BankEntry).where(BankEntry.id.in_(chunk))):
                _set_disabled(entry, until)
        found.updated_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="bank.enable_entries" if until is None else "bank.disable_entries",
            object_type="bank",
            object_id=found.id,
            details={
                "name": found.name,
                "requested": len(pairs),
                "changed": len(ids),
                "until": until,
            },
        )
    return ids


def _check_until(until: int | None) -> None:
    if until is not None and until < 0:
        raise ValueError("until must be a Unix time, or 0")


def _set_disabled(entry: BankEntry, until: int | None) -> Any:
    """Set or clear the entry's disabled-until mark; returns the mark it had."""
    meta = {k: v for k, v in (entry.meta or {}).items() if k != DISABLED_UNTIL}
    old = (entry.meta or {}).get(DISABLED_UNTIL)
    if until is not None:
        meta[DISABLED_UNTIL] = int(until)
    entry.meta = meta or None
    return old
