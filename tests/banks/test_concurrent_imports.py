"""Concurrent imports, on SQLite and PostgreSQL: an import that finds another one writing is
refused at once with the reason (never `database is locked` after 30 s, never a traceback),
and an import's `added` (summary and audit log) is what it really added."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import func, select

from childguard.banks import EntryRecord, create_bank, ensure_entries, import_records
from childguard.banks.bulk import import_lock
from childguard.banks.files import import_file
from childguard.store import Store
from childguard.store.models import AuditEvent, BankEntry

N = 4_000


def md5(i: int) -> str:
    return hashlib.md5(f"concurrent-{i}".encode()).hexdigest()


def _cli(*args: str) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("childguard")
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _entries(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(BankEntry)) or 0


def _audited_added(store: Store) -> list[int]:
    with store.session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "bank.import"))
        return [int((e.details or {})["added"]) for e in events]


def test_an_import_that_finds_another_writing_is_refused_at_once(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    bank = create_bank(store, "hotline", kind="known-abuse", actor="test")
    path = tmp_path / "list.txt"
    path.write_text("".join(md5(i) + "\n" for i in range(N)))
    with import_lock(store, bank.id):  # this process is importing into the bank
        started = time.monotonic()
        proc = _cli("bank", "import", "hotline", str(path), "--db", store_url)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - started
    assert proc.returncode == 2, (out, err)
    assert "another import is writing to this" in " ".join(err.split()), err
    assert "Traceback" not in err and "database is locked" not in err
    assert took < 20, took  # refused at once, not after SQLite's 30 s busy timeout
    assert _entries(store) == 0 and _audited_added(store) == []
    # Once the other import is done, the same import goes through.
    assert import_file(store, "hotline", path, actor="test").added == N


def test_added_counts_only_what_this_import_added(store: Store) -> None:
    """Another connection commits the same entries while this import is in its transaction:
    the import adds none of them, and says so (it said it added all of them)."""
    bank = create_bank(store, "hotline", kind="known-abuse", actor="test")
    values = [md5(i) for i in range(N)]

    def records() -> Iterator[EntryRecord]:
        with store.session() as other:  # a second writer, committed before our first insert
            ensure_entries(
                other,
                bank.id,
                [("md5", v) for v in values[: N // 2]],
                source=None,
                organisation=None,
            )
        for v in values:
            yield EntryRecord("md5", v)

    result = import_records(store, "hotline", records(), actor="test")
    assert (result.read, result.added, result.already_present) == (N, N - N // 2, N // 2)
    assert _audited_added(store) == [N - N // 2]
    assert _entries(store) == N


def test_two_processes_importing_the_same_list(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    create_bank(store, "hotline", kind="known-abuse", actor="test")
    path = tmp_path / "list.txt"
    path.write_text("".join(md5(i) + "\n" for i in range(N)))
    args = ("bank", "import", "hotline", str(path), "--db", store_url, "--json")
    procs = [_cli(*args), _cli(*args)]
    results = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    for (_, err), code in zip(results, codes, strict=True):
        assert code in (0, 2), err
        assert "Traceback" not in err
        if code == 2:
            assert "another import is writing to this" in " ".join(err.split()), err
    added = [
        json.loads(out)["added"] for (out, _), code in zip(results, codes, strict=True) if not code
    ]
    # Whichever ran first added the list; a second one that ran added nothing; the counts in
    # the summaries and the audit log add up to what is in the bank.
    assert sorted(added)[-1] == N and sum(added) == N, added
    assert sorted(_audited_added(store)) == sorted(added)
    assert _entries(store) == N
