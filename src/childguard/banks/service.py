"""Bank operations: create, list, update, delete banks; add, import, export, stream and look up
entries; statistics. Every change writes an audit event in the same transaction.

These are the functions the CLI, the API, the matcher and the index builder call. They take an
open `Store` and manage their own transactions. Results are detached ORM objects (Bank) or
plain dataclasses (EntryView, ImportResult, BankStats), safe to use after the call returns.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from sqlalchemy import Select, Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from childguard.banks.formats import (
    HashListFormat,
    ReadOptions,
    WriteOptions,
    WriteResult,
    get_format,
    guess_format,
)
from childguard.banks.records import EntryRecord, InvalidRecord, canonical_signal, validated
from childguard.errors import ChildguardError, InputFormatError
from childguard.signals import get_signal_type
from childguard.store import audit
from childguard.store.base import utcnow
from childguard.store.db import Store, StoreError
from childguard.store.models import BANK_KINDS, DEFAULT_PDQ_THRESHOLD, Bank, BankEntry

BATCH_SIZE = 5_000
STREAM_BATCH = 50_000
_ENTRY_TABLE: Table = BankEntry.__table__  # type: ignore[assignment]
_UNSET: Any = object()


class BankNotFound(ChildguardError):
    """No bank has that name or id."""


class BankExists(ChildguardError):
    """A bank with that name exists already."""


@dataclass(frozen=True)
class ImportResult:
    """What an import did. `already_present` counts valid records that added nothing (re-imports
    and duplicates within the file); `skipped` lists invalid records left out (--skip-invalid)."""

    bank: str
    read: int
    added: int
    already_present: int
    skipped: list[InvalidRecord] = field(default_factory=list)


@dataclass(frozen=True)
class EntryView:
    """One bank entry with the bank facts a match needs (name, kind, threshold, enabled)."""

    id: int
    bank_id: int
    bank_name: str
    bank_kind: str
    bank_pdq_threshold: int
    bank_enabled: bool
    signal_type: str
    value: str
    source: str | None
    organisation: str | None
    imported_at: datetime
    original_id: str | None
    classification_scheme: str | None
    classification_label: str | None
    metadata: dict[str, Any] | None


@dataclass(frozen=True)
class BankStats:
    bank: str
    kind: str
    enabled: bool
    pdq_threshold: int
    total: int
    by_signal_type: dict[str, int]
    by_classification: dict[str, int]  # "scheme:label" (or "unclassified") -> count
    by_source: dict[str, int]
    first_imported: datetime | None
    last_imported: datetime | None


# ---------------------------------------------------------------------------------------------
# Banks


def _validate_bank_fields(name: str | None, kind: str | None, pdq_threshold: int | None) -> None:
    if name is not None and (
        not name or name != name.strip() or len(name) > 200 or not name.isprintable()
    ):
        raise InputFormatError(
            f"bad bank name {name!r}: want 1-200 printable characters, no outer spaces"
        )
    if kind is not None and kind not in BANK_KINDS:
        raise InputFormatError(f"bad bank kind {kind!r}; kinds: {', '.join(BANK_KINDS)}")
    if pdq_threshold is not None and not 0 <= pdq_threshold <= 256:
        raise InputFormatError(f"PDQ threshold {pdq_threshold} is outside 0-256")


def _find_bank(session: Session, bank: str | int) -> Bank:
    if isinstance(bank, int):
        found = session.get(Bank, bank)
    else:
        found = session.scalars(select(Bank).where(Bank.name == bank)).one_or_none()
    if found is None:
        raise BankNotFound(f"no bank {bank!r}")
    return found


def create_bank(
    store: Store,
    name: str,
    kind: str,
    *,
    description: str = "",
    owner: str = "",
    pdq_threshold: int = DEFAULT_PDQ_THRESHOLD,
    enabled: bool = True,
    actor: str,
) -> Bank:
    """Create a bank; BankExists if the name is taken, InputFormatError for bad fields."""
    _validate_bank_fields(name, kind, pdq_threshold)
    with store.session() as session:
        if session.scalars(select(Bank.id).where(Bank.name == name)).first() is not None:
            raise BankExists(f"a bank named {name!r} exists already")
        bank = Bank(
            name=name,
            kind=kind,
            description=description,
            owner=owner,
            pdq_threshold=pdq_threshold,
            enabled=enabled,
        )
        session.add(bank)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="bank.create",
            object_type="bank",
            object_id=bank.id,
            details={
                "name": name,
                "kind": kind,
                "owner": owner,
                "pdq_threshold": pdq_threshold,
                "enabled": enabled,
            },
        )
    return bank


def list_banks(store: Store, *, kind: str | None = None, enabled: bool | None = None) -> list[Bank]:
    """All banks, by name, optionally only one kind or only enabled/disabled ones."""
    query = select(Bank).order_by(Bank.name)
    if kind is not None:
        query = query.where(Bank.kind == kind)
    if enabled is not None:
        query = query.where(Bank.enabled == enabled)
    with store.session() as session:
        return list(session.scalars(query))


def get_bank(store: Store, bank: str | int) -> Bank:
    """The bank with that name (str) or id (int); BankNotFound otherwise."""
    with store.session() as session:
        return _find_bank(session, bank)


def update_bank(
    store: Store,
    bank: str | int,
    *,
    actor: str,
    name: str = _UNSET,
    kind: str = _UNSET,
    description: str = _UNSET,
    owner: str = _UNSET,
    pdq_threshold: int = _UNSET,
    enabled: bool = _UNSET,
) -> Bank:
    """Change the given fields of a bank; the audit event records old and new values."""
    wanted = {
        "name": name,
        "kind": kind,
        "description": description,
        "owner": owner,
        "pdq_threshold": pdq_threshold,
        "enabled": enabled,
    }
    changes: dict[str, Any] = {k: v for k, v in wanted.items() if v is not _UNSET}
    _validate_bank_fields(changes.get("name"), changes.get("kind"), changes.get("pdq_threshold"))
    with store.session() as session:
        found = _find_bank(session, bank)
        if "name" in changes and changes["name"] != found.name:
            taken = session.scalars(select(Bank.id).where(Bank.name == changes["name"])).first()
            if taken is not None:
                raise BankExists(f"a bank named {changes['name']!r} exists already")
        diff = {
            k: {"old": getattr(found, k), "new": v}
            for k, v in changes.items()
            if getattr(found, k) != v
        }
        for k, v in changes.items():
            setattr(found, k, v)
        if diff:
            found.updated_at = utcnow()
            audit.record(
                session,
                actor=actor,
                action="bank.update",
                object_type="bank",
                object_id=found.id,
                details={"name": found.name, "changes": diff},
            )
    return found


def delete_bank(store: Store, bank: str | int, *, actor: str) -> int:
    """Delete a bank and all its entries; returns how many entries went with it."""
    with store.session() as session:
        found = _find_bank(session, bank)
        count = session.scalar(select(func.count()).where(BankEntry.bank_id == found.id)) or 0
        session.execute(delete(BankEntry).where(BankEntry.bank_id == found.id))
        session.execute(delete(Bank).where(Bank.id == found.id))
        audit.record(
            session,
            actor=actor,
            action="bank.delete",
            object_type="bank",
            object_id=found.id,
            details={"name": found.name, "kind": found.kind, "entries": count},
        )
    return count


# ---------------------------------------------------------------------------------------------
# Adding entries


def _insert_statement(store: Store) -> Any:
    if store.dialect == "sqlite":
        return sqlite.insert(_ENTRY_TABLE).on_conflict_do_nothing(
            index_elements=["bank_id", "signal_type", "value"]
        )
    if store.dialect == "postgresql":
        return postgresql.insert(_ENTRY_TABLE).on_conflict_do_nothing(
            constraint="uq_bank_entry_value"
        )
    raise StoreError(f"bulk import supports SQLite and PostgreSQL, not {store.dialect}")


def _row(rec: EntryRecord, source: str | None, organisation: str | None) -> dict[str, Any]:
    """The non-empty columns of one entry (bank_id and a shared imported_at are added per batch)."""
    row: dict[str, Any] = {"signal_type": rec.signal_type, "value": rec.value}
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


def _insert_batch(
    session: Session, insert: Any, rows: Iterable[dict[str, Any]], bank_id: int, now: datetime
) -> None:
    """executemany per shape of row: the columns every row lacks are left out (NULL), and
    bank_id / imported_at go in once as constants, which keeps per-row work small."""
    if session.get_bind().dialect.name == "postgresql":
        _copy_batch(session, rows, bank_id, now)
        return
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(frozenset(row), []).append(row)
    for keys, group in shapes.items():
        constants: dict[str, Any] = {"bank_id": bank_id}
        if "imported_at" not in keys:
            constants["imported_at"] = now
        session.execute(insert.values(**constants), group)


_COPY_COLUMNS = (
    "bank_id",
    "signal_type",
    "value",
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
            "value text, source text, organisation text, imported_at timestamptz, "
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


def _count_entries(session: Session, bank_id: int) -> int:
    return session.scalar(select(func.count()).where(BankEntry.bank_id == bank_id)) or 0


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
) -> ImportResult:
    """Add records to a bank in one transaction, idempotently.

    Each record is validated (type and canonical value). An invalid record raises
    InputFormatError with its line or record number and nothing is imported, unless
    `skip_invalid`, where it is left out and listed in the result. `source` and `organisation`
    fill in provenance that the records do not carry. `progress` is called after each batch
    with the number of records read so far. `prevalidated` skips re-validating records that
    come from a `childguard.banks.formats` reader (they validate as they read).
    """
    insert = _insert_statement(store)
    skipped: list[InvalidRecord] = []
    read = 0
    now = utcnow()
    check = (lambda r: r) if prevalidated else validated
    with store.session() as session:
        found = _find_bank(session, bank)
        before = _count_entries(session, found.id)
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
                batch[key] = _row(checked, source, organisation)
            if len(batch) >= BATCH_SIZE:
                _insert_batch(session, insert, batch.values(), found.id, now)
                batch.clear()
                if progress is not None:
                    progress(read)
        if batch:
            _insert_batch(session, insert, batch.values(), found.id, now)
        added = _count_entries(session, found.id) - before
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


class _CountingReader(io.RawIOBase):
    """Counts the bytes read through it, for a progress bar over a file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def import_file(
    store: Store,
    bank: str | int,
    path: Path | str,
    *,
    actor: str,
    fmt: str | None = None,
    signal_type: str | None = None,
    column_map: dict[str, str] | None = None,
    skip_invalid: bool = False,
    source: str | None = None,
    organisation: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a hash-list file into a bank (one transaction; see `import_records`).

    `fmt` is plain, te, csv or vics (guessed from the file when None). `source` defaults to the
    file name (pass "" for none). `progress(bytes_read, total_bytes)` is called as the file is read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    chosen: HashListFormat = get_format(fmt) if fmt else guess_format(path)
    if signal_type is not None:
        try:
            signal_type = get_signal_type(signal_type).name
        except ValueError as exc:
            raise InputFormatError(str(exc)) from None
    total = path.stat().st_size
    with path.open("rb") as raw:
        counter = _CountingReader(raw)
        text = io.TextIOWrapper(
            io.BufferedReader(counter, 1 << 20), encoding="utf-8-sig", newline=""
        )
        records = chosen.read(text, ReadOptions(signal_type=signal_type, column_map=column_map))
        try:
            return import_records(
                store,
                bank,
                records,
                actor=actor,
                skip_invalid=skip_invalid,
                source=source if source is not None else path.name,
                organisation=organisation,
                audit_details={"file": str(path), "format": chosen.name},
                prevalidated=True,
                progress=(lambda _n: progress(counter.count, total)) if progress else None,
            )
        except UnicodeDecodeError as exc:
            raise InputFormatError(f"{path}: not UTF-8 text ({exc.reason})") from None


def delete_entries(
    store: Store,
    bank: str | int,
    signals: Iterable[tuple[str, str]],
    *,
    actor: str,
) -> list[int]:
    """Remove (signal_type, value) pairs from a bank; returns the ids removed (for the index)."""
    removed: list[int] = []
    with store.session() as session:
        found = _find_bank(session, bank)
        pairs = list(signals)
        by_type: dict[str, list[str]] = {}
        for signal_type, value in pairs:
            by_type.setdefault(signal_type, []).append(value)
        for signal_type, values in by_type.items():
            unique = list(dict.fromkeys(values))
            for start in range(0, len(unique), 500):
                removed.extend(
                    session.scalars(
                        select(BankEntry.id).where(
                            BankEntry.bank_id == found.id,
                            BankEntry.signal_type == signal_type,
                            BankEntry.value.in_(unique[start : start + 500]),
                        )
                    ).all()
                )
        for start in range(0, len(removed), 500):
            session.execute(delete(BankEntry).where(BankEntry.id.in_(removed[start : start + 500])))
        audit.record(
            session,
            actor=actor,
            action="bank.delete_entries",
            object_type="bank",
            object_id=found.id,
            details={"name": found.name, "requested": len(pairs), "removed": len(removed)},
        )
    return removed


# ---------------------------------------------------------------------------------------------
# Reading entries


def _signal_query(
    session: Session,
    banks: Sequence[str | int] | None,
    signal_types: Sequence[str] | None,
    enabled_only: bool,
    after_id: int | None,
) -> Select[int, str, str]:
    query = select(BankEntry.id, BankEntry.signal_type, BankEntry.value).order_by(BankEntry.id)
    if banks is not None:
        ids = [_find_bank(session, b).id for b in banks]
        query = query.where(BankEntry.bank_id.in_(ids))
    if signal_types is not None:
        query = query.where(BankEntry.signal_type.in_(list(signal_types)))
    if enabled_only:
        query = query.join(Bank, Bank.id == BankEntry.bank_id).where(Bank.enabled.is_(True))
    if after_id is not None:
        query = query.where(BankEntry.id > after_id)
    return query


def iter_signal_batches(
    store: Store,
    *,
    banks: Sequence[str | int] | None = None,
    signal_types: Sequence[str] | None = None,
    enabled_only: bool = False,
    after_id: int | None = None,
    batch_size: int = STREAM_BATCH,
) -> Iterator[list[tuple[int, str, str]]]:
    """Lists of (entry_id, signal_type, value) in id order, streamed with a server-side cursor.

    No ORM objects are built, so 10M rows stream in constant memory. `after_id` gives only
    entries added after that id (ids only grow), for incremental index updates.
    """
    with Session(store.engine) as session:
        query = _signal_query(session, banks, signal_types, enabled_only, after_id)
        result = session.execute(query, execution_options={"yield_per": batch_size})
        for part in result.partitions():
            yield [(int(r[0]), r[1], r[2]) for r in part]


def iter_signals(
    store: Store,
    *,
    banks: Sequence[str | int] | None = None,
    signal_types: Sequence[str] | None = None,
    enabled_only: bool = False,
    after_id: int | None = None,
) -> Iterator[tuple[int, str, str]]:
    """(entry_id, signal_type, value) for every matching entry, in id order; see the batches."""
    for batch in iter_signal_batches(
        store, banks=banks, signal_types=signal_types, enabled_only=enabled_only, after_id=after_id
    ):
        yield from batch


def _view(entry: BankEntry, bank: Bank) -> EntryView:
    return EntryView(
        id=entry.id,
        bank_id=bank.id,
        bank_name=bank.name,
        bank_kind=bank.kind,
        bank_pdq_threshold=bank.pdq_threshold,
        bank_enabled=bank.enabled,
        signal_type=entry.signal_type,
        value=entry.value,
        source=entry.source,
        organisation=entry.organisation,
        imported_at=entry.imported_at,
        original_id=entry.original_id,
        classification_scheme=entry.classification_scheme,
        classification_label=entry.classification_label,
        metadata=entry.meta,
    )


def get_entries(store: Store, entry_ids: Iterable[int]) -> dict[int, EntryView]:
    """Entries by id, with their bank; ids that no longer exist are left out."""
    wanted = list(dict.fromkeys(int(i) for i in entry_ids))
    out: dict[int, EntryView] = {}
    with store.session() as session:
        for start in range(0, len(wanted), 500):
            rows = session.execute(
                select(BankEntry, Bank)
                .join(Bank, Bank.id == BankEntry.bank_id)
                .where(BankEntry.id.in_(wanted[start : start + 500]))
            )
            for entry, bank in rows:
                out[entry.id] = _view(entry, bank)
    return out


def find_exact(
    store: Store, signal_type: str, value: str, *, enabled_only: bool = True
) -> list[EntryView]:
    """Entries holding exactly this signal, across banks (uses the (signal_type, value) index)."""
    t, v = canonical_signal(signal_type, value)
    query = (
        select(BankEntry, Bank)
        .join(Bank, Bank.id == BankEntry.bank_id)
        .where(BankEntry.signal_type == t, BankEntry.value == v)
        .order_by(BankEntry.id)
    )
    if enabled_only:
        query = query.where(Bank.enabled.is_(True))
    with store.session() as session:
        return [_view(e, b) for e, b in session.execute(query)]


def iter_entry_records(
    store: Store,
    bank: str | int,
    *,
    signal_types: Sequence[str] | None = None,
    batch_size: int = 10_000,
) -> Iterator[EntryRecord]:
    """Every entry of a bank as an EntryRecord (what exporters write), in id order, streamed."""
    cols = [
        BankEntry.signal_type,
        BankEntry.value,
        BankEntry.source,
        BankEntry.organisation,
        BankEntry.original_id,
        BankEntry.classification_scheme,
        BankEntry.classification_label,
        BankEntry.meta,
        BankEntry.imported_at,
    ]
    with Session(store.engine) as session:
        found = _find_bank(session, bank)
        query = select(*cols).where(BankEntry.bank_id == found.id).order_by(BankEntry.id)
        if signal_types is not None:
            query = query.where(BankEntry.signal_type.in_(list(signal_types)))
        result = session.execute(query, execution_options={"yield_per": batch_size})
        for row in result:
            yield EntryRecord(*row)


def export_bank(
    store: Store,
    bank: str | int,
    out: TextIO | Path | str,
    fmt: str,
    *,
    actor: str,
    signal_types: Sequence[str] | None = None,
    options: WriteOptions | None = None,
) -> WriteResult:
    """Write a bank's entries in a format to a path or text stream; the export is audited."""
    writer = get_format(fmt)
    found = get_bank(store, bank)
    records = iter_entry_records(store, found.id, signal_types=signal_types)
    opts = options or WriteOptions()
    if isinstance(out, str | Path):
        target = Path(out)
        partial = target.with_name(target.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                result = writer.write(records, stream, opts)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)  # a failed export leaves no half-written file
    else:
        result = writer.write(records, out, opts)
    with store.session() as session:
        audit.record(
            session,
            actor=actor,
            action="bank.export",
            object_type="bank",
            object_id=found.id,
            details={
                "name": found.name,
                "format": writer.name,
                "written": result.written,
                "skipped": result.skipped,
                "target": str(out) if isinstance(out, str | Path) else "<stream>",
            },
        )
    return result


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
        found = _find_bank(session, bank)
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
            key = f"{scheme}:{label}" if scheme or label else "unclassified"
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
