"""The store: SQLAlchemy models, the Alembic-migrated schema, and `open_store`.

SQLite by default (a file under the data dir), PostgreSQL in production; both run the same
migrations. Other packages add their tables to `Base` and their revisions to `migrations/versions`.
"""

from childguard.store.base import Base, utcnow
from childguard.store.db import Store, StoreError, open_store, upgrade
from childguard.store.models import BANK_KINDS, DEFAULT_PDQ_THRESHOLD, AuditEvent, Bank, BankEntry

__all__ = [
    "BANK_KINDS",
    "DEFAULT_PDQ_THRESHOLD",
    "AuditEvent",
    "Bank",
    "BankEntry",
    "Base",
    "Store",
    "StoreError",
    "open_store",
    "upgrade",
    "utcnow",
]
