"""The index of one near signal type over every bank entry of that type, derived from the store
and kept in sync with it. The index class is the signal type's own (`SignalType.index_class`).

The index lives on disk beside its store (a SQLite file's `<file>.index/<type>/`; any other
store's in the data dir, keyed by its URL: `childguard.config.store_index_dir`), or under an
explicit base folder keyed by the signal type and the database URL, with a manifest of the
highest entry id it holds. Opening it applies only what changed since: entries added after
that id are added, entries deleted from the store are removed. A full rebuild happens only
when there is no saved index or it cannot be read. Disabled banks and entries stay in the
index; the matcher filters their hits, so toggling one costs nothing.

With `mmap`, a saved index whose class can map its files (PDQ) is opened memory-mapped
read-only: it loads at once, and processes that open the same saved index (the service's
workers) share its pages. What is added after goes to the index's in-memory delta, and
removals to its in-memory tombstones, so the mapped files are never written.
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select

from childguard.banks import iter_signal_batches
from childguard.config import store_index_dir
from childguard.index.base import SignalIndex
from childguard.log import get_logger
from childguard.signals.base import SignalType
from childguard.signals.pdq import PdqSignal
from childguard.signals.registry import get_signal_type, near_types
from childguard.store.db import Store
from childguard.store.models import AuditEvent, BankEntry

log = get_logger(__name__)
MANIFEST = "manifest.json"
# Removals are looked for after any audited write, and at least this often regardless.
REMOVAL_CHECK_SECONDS = 60.0
LOCK = ".lock"


@dataclass(frozen=True)
class SyncReport:
    """What opening the index did."""

    rebuilt: bool
    added: int
    removed: int
    size: int


def _store_key(store: Store) -> str:
    url = store.engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def index_path(store: Store, base: Path | None = None, signal_type: str = PdqSignal.name) -> Path:
    """Directory of the saved index of `signal_type` that belongs to this store: under `base`
    when given, else beside the store (`childguard.config.store_index_dir`)."""
    if base is None:
        return store_index_dir(store.url) / signal_type
    return base / f"{signal_type}-{_store_key(store)}"


def _rows(store: Store, signal_type: str, after_id: int | None) -> tuple[np.ndarray, list[str]]:
    """(ids, values) of one type's entries, optionally only those after an id."""
    id_parts: list[np.ndarray] = []
    values: list[str] = []
    for batch in iter_signal_batches(store, signal_types=[signal_type], after_id=after_id):
        id_parts.append(np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch)))
        values += [r[2] for r in batch]
    if not id_parts:
        return np.zeros(0, np.int64), []
    return np.concatenate(id_parts), values


def _tail(store: Store, signal_type: str, after_id: int) -> tuple[np.ndarray, list[str], int, int]:
    """(ids, values) of one type's entries after an id, the newest id of any type seen, and
    how many entries of any type were seen. Read through the primary key (a filter on the
    type would make SQLite walk the type's whole index) and kept by type here."""
    value = func.coalesce(BankEntry.payload, BankEntry.value)
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(BankEntry.id, BankEntry.signal_type, value)
            .where(BankEntry.id > after_id)
            .order_by(BankEntry.id)
        ).all()
    kept = [(int(r[0]), str(r[2])) for r in rows if r[1] == signal_type]
    newest = int(rows[-1][0]) if rows else after_id
    ids = np.fromiter((r[0] for r in kept), dtype=np.int64, count=len(kept))
    return ids, [r[1] for r in kept], newest, len(rows)


def _fingerprint(store: Store, up_to: int) -> str:
    """What the store holds at the watermark: a digest of its newest entry at or under `up_to`
    (any type). A saved index whose fingerprint differs belongs to another life of the store
    at the same address (recreated, emptied, restored from an older backup) and is rebuilt."""
    value = func.coalesce(BankEntry.payload, BankEntry.value)
    with store.engine.connect() as connection:
        row = connection.execute(
            select(BankEntry.id, BankEntry.signal_type, value)
            .where(BankEntry.id <= up_to)
            .order_by(BankEntry.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return ""
    return hashlib.sha256(f"{row[0]}:{row[1]}:{row[2]}".encode()).hexdigest()[:16]


def _scalar(store: Store, query: Select[Any]) -> int:
    with store.engine.connect() as connection:
        found = connection.execute(query).scalar()
        return int(found or 0)


def _store_ids(store: Store, signal_type: str, up_to: int) -> np.ndarray:
    with store.session() as session:
        rows = session.execute(
            select(BankEntry.id).where(BankEntry.signal_type == signal_type, BankEntry.id <= up_to)
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64)


def _store_count(store: Store, signal_type: str, up_to: int) -> int:
    with store.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(BankEntry)
                .where(BankEntry.signal_type == signal_type, BankEntry.id <= up_to)
            )
            or 0
        )


def _index_class(signal_type: type[SignalType]) -> type[SignalIndex]:
    found = signal_type.index_class()
    if found is None:
        raise ValueError(f"{signal_type.name} signals are exact and have no index")
    return found


class BankIndex:
    """A signal type's index whose ids are bank entry ids, plus the watermark that keeps it
    in sync with the store."""

    def __init__(
        self, signal_type: str, index: SignalIndex, max_entry_id: int, path: Path | None
    ) -> None:
        self.signal_type = signal_type
        self.index = index
        self.max_entry_id = max_entry_id
        self.path = path
        # The store's fingerprint at the watermark when the index was last saved or loaded.
        self.fingerprint: str | None = None
        # What the last look for removals saw: the newest audit event, the time, and how
        # many entries of any type the store held up to the watermark.
        self._audit_seen: int | None = None
        self._checked_at = 0.0
        self._held_below: int | None = None

    @classmethod
    def build(
        cls, store: Store, path: Path | None = None, signal_type: str = PdqSignal.name
    ) -> BankIndex:
        newest = _scalar(store, select(func.max(BankEntry.id)))  # read first: later ones follow
        ids, values = _rows(store, signal_type, None)
        index = _index_class(get_signal_type(signal_type)).from_values(ids, values)
        return cls(signal_type, index, max(newest, int(ids.max()) if ids.size else 0), path)

    @classmethod
    def open(
        cls,
        store: Store,
        *,
        base: Path | None = None,
        persist: bool = True,
        signal_type: str = PdqSignal.name,
        mmap: bool = False,
    ) -> tuple[BankIndex, SyncReport]:
        """Load the saved index of `signal_type` for `store` (memory-mapped with `mmap`, where
        the index class can) and bring it up to date, or build it."""
        path = index_path(store, base, signal_type) if persist else None
        loaded = cls._load(path, signal_type, mmap=mmap) if path is not None else None
        if loaded is not None and loaded.fingerprint != _fingerprint(store, loaded.max_entry_id):
            log.info("index.store_changed", path=str(path), signal_type=signal_type)
            loaded = None
        if loaded is None:
            built = cls.build(store, path, signal_type)
            if path is not None:
                built.save(store)
            return built, SyncReport(True, len(built.index), 0, len(built.index))
        watermark = loaded.max_entry_id
        added, removed = loaded.sync(store)
        if path is not None and (added or removed or loaded.max_entry_id != watermark):
            loaded.save(store)
        return loaded, SyncReport(False, added, removed, len(loaded.index))

    @classmethod
    def _load(cls, path: Path, signal_type: str, *, mmap: bool = False) -> BankIndex | None:
        manifest = path / MANIFEST
        if not manifest.exists():
            return None
        try:
            with (path / LOCK).open("a") as lock:  # never half-way through another's save
                fcntl.flock(lock, fcntl.LOCK_SH)
                meta = json.loads(manifest.read_text())
                index_class = _index_class(get_signal_type(signal_type))
                if mmap and _can_mmap(index_class):
                    index = index_class.load(path / signal_type, mmap=True)  # type: ignore[call-arg]
                else:
                    index = index_class.load(path / signal_type)
            loaded = cls(signal_type, index, int(meta["max_entry_id"]), path)
            loaded.fingerprint = meta.get("fingerprint")
            return loaded
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("index.unreadable", path=str(path), error=str(exc))
            shutil.rmtree(path, ignore_errors=True)
            return None

    def sync(self, store: Store) -> tuple[int, int]:
        """Apply store changes since the watermark; returns (added, removed).

        Additions are entries after the watermark (one primary-key look at the newest id when
        there are none). Removals are entries at or under the watermark that the store no
        longer holds; they are looked for only when the audit log has moved since the last
        look (every entry write through `childguard.banks` is audited) or
        `REMOVAL_CHECK_SECONDS` have passed, and then first by one count of the store's
        entries up to the watermark, so a store that only grew costs no scan of its rows."""
        removed = self._removals(store)
        added = 0
        if _scalar(store, select(func.max(BankEntry.id))) > self.max_entry_id:
            ids, values, newest, seen = _tail(store, self.signal_type, self.max_entry_id)
            if ids.size:
                self.index.add_values(ids, values)
                added = int(ids.size)
            # Every entry of this type up to the newest id seen is held now.
            self.max_entry_id = max(self.max_entry_id, newest)
            if self._held_below is not None:  # still the count up to the new watermark
                self._held_below += seen
        return added, removed

    def _removals(self, store: Store) -> int:
        audit_now = _scalar(store, select(func.max(AuditEvent.id)))
        now = time.monotonic()
        if audit_now == self._audit_seen and now - self._checked_at < REMOVAL_CHECK_SECONDS:
            return 0
        self._audit_seen, self._checked_at = audit_now, now
        below = _scalar(
            store,
            select(func.count()).select_from(BankEntry).where(BankEntry.id <= self.max_entry_id),
        )
        if below == self._held_below:
            return 0
        removed = 0
        if _store_count(store, self.signal_type, self.max_entry_id) != len(self.index):
            present = _store_ids(store, self.signal_type, self.max_entry_id)
            held = self.index.live_ids()
            gone = np.setdiff1d(held, present, assume_unique=False)
            if gone.size:
                removed = self.index.remove(gone)
        self._held_below = below
        return removed

    def save(self, store: Store | None = None) -> None:
        """Write the index and its manifest where it was opened from, one process at a time
        (workers that start together each save what they synced). With `store`, the manifest
        records the store's fingerprint at the watermark (see `_fingerprint`)."""
        if self.path is None:
            return
        if store is not None:
            self.fingerprint = _fingerprint(store, self.max_entry_id)
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / LOCK).open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.index.save(self.path / self.signal_type)
            tmp = self.path / f".{MANIFEST}.tmp"
            manifest = {
                "max_entry_id": self.max_entry_id,
                "size": len(self.index),
                "fingerprint": self.fingerprint,
            }
            tmp.write_text(json.dumps(manifest))
            tmp.replace(self.path / MANIFEST)


def _can_mmap(index_class: type[SignalIndex]) -> bool:
    return "mmap" in inspect.signature(index_class.load).parameters


def open_indexes(
    store: Store, *, base: Path | None = None, persist: bool = True, mmap: bool = False
) -> dict[str, tuple[BankIndex, SyncReport]]:
    """The index of every registered near signal type, each opened (memory-mapped with
    `mmap`, where it can be) and synced."""
    return {
        name: BankIndex.open(store, base=base, persist=persist, signal_type=name, mmap=mmap)
        for name in near_types()
    }
