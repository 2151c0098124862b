"""Hash banks: named lists of signals with provenance, their service functions and file formats.

This package is the only writer of bank entries. Import the API from `childguard.banks` and the
file formats from `childguard.banks.formats`.

Session convention, for every function here: the first parameter says who owns the transaction.
- A function that takes a `Store` opens its own session, commits on success (rolls back on any
  error) and writes its audit event in that transaction. Results are detached ORM objects or
  plain dataclasses, safe to use after the call returns.
- A function that takes a `Session` works inside the caller's transaction: it may flush, never
  commits or rolls back, and writes no audit event (the caller records what the change was for).
"""

from childguard.banks.entries import ensure_entries, remove_entries_by_id
from childguard.banks.records import EntryRecord, InvalidRecord
from childguard.banks.service import (
    BankExists,
    BankNotFound,
    BankStats,
    EntryView,
    ImportResult,
    add_entries,
    bank_stats,
    create_bank,
    delete_bank,
    delete_entries,
    entry_counts,
    export_bank,
    find_exact,
    get_bank,
    get_entries,
    import_file,
    import_records,
    iter_entry_records,
    iter_signal_batches,
    iter_signals,
    list_banks,
    update_bank,
)

__all__ = [
    "BankExists",
    "BankNotFound",
    "BankStats",
    "EntryRecord",
    "EntryView",
    "ImportResult",
    "InvalidRecord",
    "add_entries",
    "bank_stats",
    "create_bank",
    "delete_bank",
    "delete_entries",
    "ensure_entries",
    "entry_counts",
    "export_bank",
    "find_exact",
    "get_bank",
    "get_entries",
    "import_file",
    "import_records",
    "iter_entry_records",
    "iter_signal_batches",
    "iter_signals",
    "list_banks",
    "remove_entries_by_id",
    "update_bank",
]
