"""Hash banks: named lists of signals with provenance, their service functions and file formats.

This package is the only writer of bank entries. Import the API from `childguard.banks` and the
file formats from `childguard.banks.formats`. Modules: `catalog` (the banks: create, list, get,
update, delete), `entries` (every entry write), `bulk` (the fast insert path behind imports),
`files` (import from and export to hash-list files), `reads` (streams and look-ups of entries),
`stats` (counts), `records` (the records that flow between formats and the service).

Session convention, for every function here: the first parameter says who owns the transaction.
- A function that takes a `Store` opens its own session, commits on success (rolls back on any
  error) and writes its audit event in that transaction. Results are detached ORM objects or
  plain dataclasses, safe to use after the call returns.
- A function that takes a `Session` works inside the caller's transaction: it may flush, never
  commits or rolls back, and writes no audit event (the caller records what the change was for).
"""

from childguard.banks.catalog import (
    BankExists,
    BankNotFound,
    create_bank,
    delete_bank,
    find_bank,
    get_bank,
    list_banks,
    mark_bank_changed,
    quarantine_bank,
    release_bank,
    update_bank,
)
from childguard.banks.entries import (
    ImportResult,
    add_entries,
    delete_entries,
    ensure_entries,
    import_records,
    remove_entries_by_id,
    set_entries_disabled,
    set_entry_disabled,
)
from childguard.banks.files import export_bank, import_file
from childguard.banks.reads import (
    EntryView,
    find_exact,
    get_entries,
    iter_entry_records,
    iter_signal_batches,
    iter_signals,
    lookup_values,
)
from childguard.banks.records import EntryRecord, InvalidRecord
from childguard.banks.stats import BankStats, bank_stats, entry_counts

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
    "find_bank",
    "find_exact",
    "get_bank",
    "get_entries",
    "import_file",
    "import_records",
    "iter_entry_records",
    "iter_signal_batches",
    "iter_signals",
    "list_banks",
    "lookup_values",
    "mark_bank_changed",
    "quarantine_bank",
    "release_bank",
    "remove_entries_by_id",
    "set_entries_disabled",
    "set_entry_disabled",
    "update_bank",
]
