# Owns the fast path for writing many entry rows: DBAPI executemany of INSERT ... ON CONFLICT
# DO NOTHING per row shape on SQLite; COPY into a temporary table, then one INSERT ... SELECT,
# on PostgreSQL; and the lock that lets one import at a time write to a store (SQLite) or bank
# (PostgreSQL).
"""Bulk insertion of bank entry rows, idempotent on (bank, signal type, value), counting the
rows each batch really added; and `import_lock`, held by an import while it writes."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from childguard import config
from childguard.banks.records import EntryRecord, stored_form
from childguard.store.db import Store, StoreError
from childguard.store.models import BankEntry

_ENTRY_TABLE: Table = BankEntry.__table__  # type: ignore[assignment]


def check_bulk_dialect(store: Store) -> None:
    """StoreError unless the store is one the bulk path writes to (SQLite, PostgreSQL)."""
    if store.dialect not in ("sqlite", "postgresql"):
        raise StoreError(f"bulk import supports SQLite and PostgreSQL, not {store.dialect}")


def entry_row(rec: EntryRecord, source: str | None, organisation: str | None) -> dict[str, Any]:
    """The non-empty columns of one entry (bank_id and a shared imported_at are added per batch)."""
    key, payload = stored_form(rec.signal_type, rec.value)
    row: dict[str, Any] = {"signal_type": rec.signal_type, "value": key}
    if payload is not None:
        row["payload"] = payload
    src = rec.source if rec.source is not None else (source or None)
    org = rec.organisation if rec.organisation is not None else (organisation or None)
    optional = (
        ("source", src),
        ("organisation", org),
        ("imported_at", rec.imported_at),
        ("original_id", rec.original_id),
        ("classification_scheme", rec.classification_scheme),
        ("classification_label", rec.classification_label),
        ("metadata", rec.metadata or None),
    )
    for key, value in optional:
        if value is not None:
            row[key] = value
    return row


def insert_batch(
    session: Session, rows: Iterable[dict[str, Any]], bank_id: int, now: datetime
) -> int:
    """Insert a batch, skipping rows already there; the number of rows it added. COPY on
    PostgreSQL; on SQLite one executemany per shape of row (the columns every row lacks are
    left out, so NULL), with bank_id / imported_at bound once as constants.

    The count is the database's own count of inserted rows, so rows that another import
    added first (committed, or committed while this one waited for them) are not counted."""
    if session.get_bind().dialect.name == "postgresql":
        return _copy_batch(session, rows, bank_id, now)
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(row)), []).append(row)
    return sum(
        _sqlite_executemany(session, keys, group, bank_id, now) for keys, group in shapes.items()
    )


def _sqlite_executemany(
    session: Session,
    keys: tuple[str, ...],
    group: list[dict[str, Any]],
    bank_id: int,
    now: datetime,
) -> int:
    """One shape of rows through the DBAPI's executemany: each value converted by its
    column type's own bind processor (what SQLAlchemy stores), without building a parameter
    dictionary per row."""
    connection = session.connection()
    dialect = connection.dialect
    columns = [c for c in keys if c != "imported_at"]
    processors = [
        _ENTRY_TABLE.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns
    ]
    constants: list[tuple[str, Any]] = [("bank_id", bank_id)]
    if "imported_at" in keys:
        columns.append("imported_at")
        processors.append(
            _ENTRY_TABLE.c.imported_at.type.dialect_impl(dialect).bind_processor(dialect)
        )
    else:
        at = _ENTRY_TABLE.c.imported_at.type.dialect_impl(dialect).bind_processor(dialect)
        constants.append(("imported_at", at(now) if at else now))
    names = [name for name, _ in constants] + columns
    marks = ", ".join(["?"] * len(names))
    sql = (
        f"INSERT INTO bank_entry ({', '.join(names)}) VALUES ({marks}) "
        "ON CONFLICT (bank_id, signal_type, value) DO NOTHING"
    )
    fixed = tuple(value for _, value in constants)
    if not any(processors):
        params = [fixed + tuple(row[c] for c in columns) for row in group]
    else:
        pairs = list(zip(columns, processors, strict=True))
        params = [fixed + tuple(p(row[c]) if p else row[c] for c, p in pairs) for row in group]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, params)
        return max(int(cursor.rowcount), 0)
    finally:
        cursor.close()


_COPY_COLUMNS = (
    "bank_id",
    "signal_type",
    "value",
    "payload",
    "source",
    "organisation",
    "imported_at",
    "original_id",
    "classification_scheme",
    "classification_label",
    "metadata",
)


def _copy_batch(
    session: Session, rows: Iterable[dict[str, Any]], bank_id: int, now: datetime
) -> int:
    """PostgreSQL: COPY the batch into a temporary table, then one INSERT ... SELECT ... ON
    CONFLICT DO NOTHING. Several times faster than executemany on large imports."""
    conn = session.connection().connection.driver_connection
    cols = ", ".join(_COPY_COLUMNS)
    with conn.cursor() as cur:  # type: ignore[union-attr]
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS _childguard_import ("
            "seq bigint GENERATED ALWAYS AS IDENTITY, bank_id integer, signal_type text, "
            "value text, payload text, source text, organisation text, imported_at timestamptz, "
            "original_id text, classification_scheme text, classification_label text, "
            "metadata json) ON COMMIT DROP"
        )
        cur.execute("TRUNCATE _childguard_import")
        with cur.copy(f"COPY _childguard_import ({cols}) FROM STDIN") as copy:
            for row in rows:
                meta = row.get("metadata")
                copy.write_row(
                    (
                        bank_id,
                        row["signal_type"],
                        row["value"],
                        row.get("payload"),
                        row.get("source"),
                        row.get("organisation"),
                        row.get("imported_at") or now,
                        row.get("original_id"),
                        row.get("classification_scheme"),
                        row.get("classification_label"),
                        None if meta is None else json.dumps(meta, ensure_ascii=False),
                    )
                )
        cur.execute(
            f"INSERT INTO bank_entry ({cols}) SELECT {cols} FROM _childguard_import "
            "ORDER BY seq ON CONFLICT ON CONSTRAINT uq_bank_entry_value DO NOTHING"
        )
        return max(int(cur.rowcount), 0)


class ImportBusy(StoreError):
    """Another import is writing to the same store (SQLite) or bank (PostgreSQL)."""


# The first key of the PostgreSQL advisory lock an import holds; the second is the bank's id.
_PG_LOCK_CLASS = zlib.crc32(b"childguard.bank-import") & 0x7FFFFFFF
_POLL_S = 0.2


_SUFFIX = ".import-lock"


def lock_path(store: Store) -> str | None:
    """The file a SQLite store's imports lock (`<store>.import-lock`); None for others."""
    path = config.sqlite_path(store.url)
    return None if path is None else f"{path}{_SUFFIX}"


@contextmanager
def import_lock(store: Store, bank_id: int, *, wait: float = 0.0) -> Iterator[None]:
    """Held around an import's transaction: one import at a time per SQLite store (the writer
    of a SQLite file blocks every other writer, so a second import would stall behind the
    first and fail when SQLite's busy timeout ran out), and per bank on PostgreSQL (an
    advisory lock on a connection of its own). Waits up to `wait` seconds for the other
    import, then raises ImportBusy saying that another import is writing. A SQLite store that
    another writer kept locked past its busy timeout is ImportBusy too, not a traceback."""
    deadline = time.monotonic() + max(wait, 0.0)
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            key = {"cls": _PG_LOCK_CLASS, "bank": int(bank_id)}
            while not conn.scalar(text("SELECT pg_try_advisory_lock(:cls, :bank)"), key):
                if time.monotonic() >= deadline:
                    raise ImportBusy(
                        "another import is writing to this bank; nothing was imported: try "
                        "again when it has finished"
                    )
                time.sleep(_POLL_S)
            try:
                yield
            finally:
                conn.scalar(text("SELECT pg_advisory_unlock(:cls, :bank)"), key)
                conn.commit()
        return
    path = lock_path(store)
    fd: int | None = None
    if path is not None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a folder this process cannot write: neither can it write the store
            fd = None
    try:
        while fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    where = config.sqlite_path(store.url)
                    raise ImportBusy(
                        f"another import is writing to this store ({where}); nothing was "
                        "imported: try again when it has finished"
                    ) from None
                time.sleep(_POLL_S)
        try:
            yield
        except (OperationalError, sqlite3.OperationalError) as exc:
            if "database is locked" in str(exc) or "database is busy" in str(exc):
                raise ImportBusy(
                    "another writer kept the store locked for longer than SQLite waits (30 s);"
                    " nothing was imported: try again"
                ) from None
            raise
    finally:
        if fd is not None:
            os.close(fd)
