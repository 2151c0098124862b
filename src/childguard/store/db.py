# Owns opening the store: whether it may be created, engine set-up per dialect, and migrations.
"""Opening the store: engine set-up per dialect and the Alembic upgrade to the latest schema.

`open_store(url, create=False)` opens only a store that exists (a SQLite file, or a database
that holds childguard's schema) and raises `StoreMissing` naming where it looked otherwise;
with `create=True` (the default) a new store is made there, and `Store.created` says so.
"""

from __future__ import annotations

import os
import sqlite3
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from childguard import config
from childguard.errors import ChildguardError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class StoreError(ChildguardError):
    """The store cannot be opened or used (bad URL, unreachable server, failed migration)."""


class StoreMissing(StoreError):
    """There is no store where one was to be opened and none may be created there."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


@dataclass
class Store:
    """An open database: the engine plus a session factory. Close it when done."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]
    # True when this open made a new store (a new SQLite file, or the schema in an empty database).
    created: bool = False

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any exception."""
        with self.sessions.begin() as session:
            yield session

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # 64 MiB of page cache (allocated as used): bulk imports into the unique indexes of
    # bank_entry are several times faster than with the 2 MiB default.
    cur.execute("PRAGMA cache_size=-65536")
    cur.close()


# Engines of this process. A forked child (the crawler runs in one) must not reuse the parent's
# pooled connections: it drops them without closing them, and opens its own.
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


def _forget_pools_after_fork() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def create_store_engine(url: str) -> Engine:
    """An engine for `url`. SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    _ENGINES.add(engine)
    return engine


def alembic_config() -> Config:
    """An Alembic Config pointing at our migrations, with no .ini file needed."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction for migrations, committed when the block ends.

    On SQLite, foreign keys are off while it runs: a batch migration rebuilds a table by
    dropping it, and with foreign keys on, that drop would delete (CASCADE) or orphan the rows
    of other tables that refer to it. They are checked before the commit (a violation rolls
    the migration back) and turned on again afterwards."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # only works outside a transaction
            conn.commit()
        try:
            with conn.begin():
                yield conn
                if sqlite:
                    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise StoreError(
                            f"migration left {len(broken)} rows referring to missing rows "
                            f"(first: {tuple(broken[0])}); rolled back"
                        )
        finally:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _at_heads(engine: Engine, cfg: Config) -> bool:
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == set(ScriptDirectory.from_config(cfg).get_heads())


def upgrade(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to `revision` (default: the latest of every branch). A store already
    there is left alone (no transaction, and no foreign key check over a large SQLite file)."""
    cfg = alembic_config()
    if revision == "heads" and _at_heads(engine, cfg):
        return
    with migration_connection(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _has_schema(engine: Engine) -> bool:
    """Whether the database holds a childguard schema (any migration applied)."""
    with engine.connect() as conn:
        return bool(MigrationContext.configure(conn).get_current_heads())


def _sqlite_has_schema(path: Path) -> bool:
    """Whether a SQLite file exists and holds a childguard schema, looked at read-only (opening
    it through the engine would write a header into an empty file)."""
    if not path.is_file():
        return False
    try:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from None
    return found is not None


def _missing(resolved: str, path: Path | None) -> StoreMissing:
    if path is not None and not path.exists():
        return StoreMissing(f"no store at {path}: the file does not exist", str(path))
    where = (
        str(path) if path is not None else make_url(resolved).render_as_string(hide_password=True)
    )
    what = "file" if path is not None else "database"
    return StoreMissing(f"no store at {where}: the {what} holds no childguard schema", where)


def open_store(url: str | None = None, *, migrate: bool = True, create: bool = True) -> Store:
    """Open the store at `url` (default: `childguard.config.database_url()`), migrated to head.

    With `create` false, a store that does not exist yet is refused (`StoreMissing`, naming
    the file or database) and nothing is written there: no file, no folder, no schema."""
    try:
        resolved = config.database_url(url)
    except config.BadStoreUrl as exc:
        raise StoreError(str(exc)) from None
    path = config.sqlite_path(resolved)
    if not create and path is not None and not _sqlite_has_schema(path):
        raise _missing(resolved, path)
    engine: Engine | None = None
    try:
        engine = create_store_engine(resolved)
        existed = _has_schema(engine)
        if not existed and not create:
            raise _missing(resolved, path)
        if migrate:
            upgrade(engine)
    except ChildguardError:
        if engine is not None:
            engine.dispose()
        raise
    except Exception as exc:  # driver errors differ per dialect; say which store failed and why
        if engine is not None:
            engine.dispose()
        safe = make_url(resolved).render_as_string(hide_password=True)
        raise StoreError(f"cannot open the store at {safe}: {exc}") from exc
    return Store(
        url=resolved,
        engine=engine,
        sessions=sessionmaker(engine, expire_on_commit=False),
        created=migrate and not existed,
    )
