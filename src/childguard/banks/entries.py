# Owns every write of bank entries: adding, importing and removing entries.
"""Bank entry writes. `ensure_entries` and `remove_entries_by_id` work in the caller's session
(the caller owns the transaction and the audit event that explains the change, e.g.
`protect.register`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from childguard.store.models import BankEntry

_CHUNK = 500


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
    ids: dict[tuple[str, str], int] = {}
    values = list(dict.fromkeys(v for _, v in wanted))
    for start in range(0, len(values), _CHUNK):
        rows = session.execute(
            select(BankEntry.id, BankEntry.signal_type, BankEntry.value).where(
                BankEntry.bank_id == bank_id,
                BankEntry.value.in_(values[start : start + _CHUNK]),
            )
        )
        for entry_id, signal_type, value in rows:
            ids[(signal_type, value)] = int(entry_id)
    new = [
        BankEntry(
            bank_id=bank_id,
            signal_type=signal_type,
            value=value,
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
            ids[(entry.signal_type, entry.value)] = entry.id
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
