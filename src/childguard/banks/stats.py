# Owns bank statistics: entry counts per bank and the breakdown of one bank.
"""Bank statistics, computed with grouped queries (no entries are loaded)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from childguard.banks.catalog import find_bank
from childguard.store.db import Store
from childguard.store.models import BankEntry


@dataclass(frozen=True)
class BankStats:
    bank: str
    kind: str
    enabled: bool
    pdq_threshold: int
    total: int
    by_signal_type: dict[str, int]
    by_classification: dict[str, int]  # "scheme:label", a label alone, or "unclassified"
    by_source: dict[str, int]
    first_imported: datetime | None
    last_imported: datetime | None


def entry_counts(store: Store) -> dict[int, int]:
    """Number of entries per bank id, in one grouped query (banks without entries are absent)."""
    with store.session() as session:
        return {
            bank_id: n
            for bank_id, n in session.execute(
                select(BankEntry.bank_id, func.count()).group_by(BankEntry.bank_id)
            )
        }


def bank_stats(store: Store, bank: str | int) -> BankStats:
    """Counts per signal type, classification and source, and the import time range."""
    with store.session() as session:
        found = find_bank(session, bank)
        where = BankEntry.bank_id == found.id
        by_type: dict[str, int] = {
            t: n
            for t, n in session.execute(
                select(BankEntry.signal_type, func.count())
                .where(where)
                .group_by(BankEntry.signal_type)
            )
        }
        by_class: dict[str, int] = {}
        for scheme, label, n in session.execute(
            select(BankEntry.classification_scheme, BankEntry.classification_label, func.count())
            .where(where)
            .group_by(BankEntry.classification_scheme, BankEntry.classification_label)
        ):
            key = f"{scheme}:{label}" if scheme and label else (label or scheme or "unclassified")
            by_class[key] = by_class.get(key, 0) + n
        by_source = {
            (s or "(none)"): n
            for s, n in session.execute(
                select(BankEntry.source, func.count()).where(where).group_by(BankEntry.source)
            )
        }
        first, last = session.execute(
            select(func.min(BankEntry.imported_at), func.max(BankEntry.imported_at)).where(where)
        ).one()
    return BankStats(
        bank=found.name,
        kind=found.kind,
        enabled=found.enabled,
        pdq_threshold=found.pdq_threshold,
        total=sum(by_type.values()),
        by_signal_type=by_type,
        by_classification=by_class,
        by_source=by_source,
        first_imported=first,
        last_imported=last,
    )
