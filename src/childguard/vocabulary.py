# Owns the fixed names every layer shares: the roles, the bank kinds and the default PDQ
# threshold.
"""Plain constants with no dependencies, so that the command line can name them in its help
without loading the store; the store's models and checks are built from the same tuples."""

from __future__ import annotations

# Every role a key or user can hold. Each route of the service is owned by exactly one.
ROLES = ("hash", "match", "curate", "reporter", "analyst", "supervisor", "org-admin", "admin")

# What a bank holds: hashes of known abuse material, an organisation's protected photos, or
# content that must never be reported (an allow list).
BANK_KINDS = ("known-abuse", "protected", "allow")

# A bank's PDQ match threshold unless it sets its own (bits of 256).
DEFAULT_PDQ_THRESHOLD = 31

# The hash-list file formats a bank imports and exports, by the name `--format` takes
# (`childguard.banks.formats.FORMATS` holds one reader and writer for each, in this order).
HASH_LIST_FORMATS = ("plain", "te", "csv", "vics")
