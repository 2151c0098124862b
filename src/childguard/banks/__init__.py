"""Hash banks: named lists of signals with provenance, their service functions and file formats.

Import what you need from `childguard.banks.service` (the API) and `childguard.banks.formats`.
"""

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
    "update_bank",
]
