"""Malformed hash lists (`hostile.hashlists`) never end in a traceback, and a failed import
changes nothing: on SQLite and on PostgreSQL through the library, and through `childguard bank
import` (exit 0 or 2, the line or record named) for the lists that crashed it and one list of
every class. CHILDGUARD_HOSTILE=long runs twenty times as many lists."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from childguard.banks import create_bank
from childguard.banks.files import import_file
from childguard.cli import app
from childguard.errors import ChildguardError, InputFormatError
from childguard.store import Store, open_store
from childguard.store.models import AuditEvent, BankEntry
from hostile.hashlists import GENERATORS, HostileList, hostile_hash_lists

# The quick tier (make test): ten lists of each class on SQLite, five on PostgreSQL; the long
# tier (CHILDGUARD_HOSTILE=long, make test-hostile): two hundred of each, from other seeds too.
LONG = os.environ.get("CHILDGUARD_HOSTILE") == "long"
SEED = 21
COUNT = 3_400 if LONG else 170


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def hostile_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'store.db'}"
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        url = cluster.create_database("childguard_hostile_lists")
    store = open_store(url)
    create_bank(store, "hostile", kind="known-abuse", actor="test")
    try:
        yield store
    finally:
        store.close()


def _state(store: Store) -> tuple[int, int]:
    with store.session() as session:
        entries = session.scalar(select(func.count()).select_from(BankEntry)) or 0
        events = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    return entries, events


def _import(store: Store, case: HostileList, path: Path, skip_invalid: bool) -> str | None:
    """None when the import succeeded; the error text when it was refused (store unchanged);
    the test fails on anything else."""
    before = _state(store)
    try:
        import_file(store, "hostile", path, actor="test", fmt=case.fmt, skip_invalid=skip_invalid)
    except ChildguardError as exc:
        assert _state(store) == before, f"{case.kind}: a refused import changed the store"
        if isinstance(exc, InputFormatError):
            assert exc.line is not None or exc.record is not None, (
                f"{case.kind}: the refusal names no line or record: {exc}"
            )
        return str(exc)
    except Exception:
        pytest.fail(f"{case.kind} ({case.name}): traceback\n{traceback.format_exc()}")
    return None


def test_every_hostile_list_is_refused_cleanly_or_imported(
    hostile_store: Store, tmp_path: Path
) -> None:
    count = COUNT if hostile_store.dialect == "sqlite" else COUNT // 2
    refused = imported = 0
    seed = SEED + (hostile_store.dialect != "sqlite") + (1000 if LONG else 0)
    for number, case in enumerate(hostile_hash_lists(seed, count)):
        path = tmp_path / f"{number}-{case.name}"
        path.write_bytes(case.data)
        strict = _import(hostile_store, case, path, skip_invalid=False)
        lenient = strict and _import(hostile_store, case, path, skip_invalid=True)
        refused += strict is not None
        imported += lenient is None
        path.unlink()
    # The corpus is hostile enough to be refused most of the time, and not so broken that
    # nothing of it can be imported.
    assert refused > count // 2 and imported > count // 10, (refused, imported)


CRASHES = [
    ("deep json document", "record 1: JSON nested more than"),
    ("deep json record", "record 2: JSON nested more than"),
    ("huge media-id", "record 1: MediaID: a number of 5000 digits"),
    ("huge category", "record 1: Category: a number of 5000 digits"),
    ("imported_at 9999-12-31T23:59:59-01:00", "line 2: imported_at"),
    ("utf-8", "not valid UTF-8 text"),
    ("utf-16 surrogate", "not valid UTF-16 text"),
]


def test_the_crashes_found_end_in_exit_2_with_where(tmp_path: Path) -> None:
    """The lists that ended in a traceback (exit 1) now end in exit 2 naming the line or
    record, through `childguard bank import`; then every class once more with
    --skip-invalid: exit 0 or 2, never a traceback."""
    db = tmp_path / "cg.db"
    runner = CliRunner()
    runner.invoke(app, ["bank", "create", "h", "--kind", "known-abuse", "--db", str(db)])
    corpus = list(hostile_hash_lists(SEED, 2000))
    for kind, needle in CRASHES:
        case = next(c for c in corpus if c.kind == kind)
        path = tmp_path / case.name
        path.write_bytes(case.data)
        args = ["bank", "import", "h", str(path), "--db", str(db)]
        result = runner.invoke(app, [*args, *(["--format", case.fmt] if case.fmt else [])])
        assert result.exit_code == 2, (kind, result.output, result.exception)
        assert isinstance(result.exception, SystemExit)
        assert needle in " ".join(result.output.split()), result.output
        assert "line " in result.output or "record " in result.output
    for number, case in enumerate(hostile_hash_lists(SEED + 1, len(GENERATORS))):
        path = tmp_path / f"{number}-{case.name}"
        path.write_bytes(case.data)
        args = ["bank", "import", "h", str(path), "--db", str(db), "--skip-invalid"]
        result = runner.invoke(app, [*args, *(["--format", case.fmt] if case.fmt else [])])
        assert result.exit_code in (0, 2), (case.kind, result.output)
        assert isinstance(result.exception, SystemExit | None), (case.kind, result.exception)
        assert "Traceback" not in result.output, case.kind
