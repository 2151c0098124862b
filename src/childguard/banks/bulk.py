# Owns the fast path for writing many entry rows: DBAPI executemany of INSERT ... ON CONFLICT
# DO NOTHING per row shape on SQLite; COPY into a temporary table, then one INSERT ... SELECT,
# on PostgreSQL.
"""Bulk insertion of bank entry rows, idempotent on (bank, signal type, value)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

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
) -> None:
    """Insert a batch, skipping rows already there: COPY on PostgreSQL; on SQLite one
    executemany per shape of row (the columns every row lacks are left out, so NULL), with
    bank_id / imported_at bound once as constants."""
    if session.get_bind().dialect.name == "postgresql":
        _copy_batch(session, rows, bank_id, now)
        return
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(row)), []).append(row)
    for keys, group in shapes.items():
        _sqlite_executemany(session, keys, group, bank_id, now)


def _sqlite_executemany(
    session: Session,
    keys: tuple[str, ...],
    group: list[dict[str, Any]],
    bank_id: int,
    now: datetime,
) -> None:
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
) -> None:
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
