"""The store on SQLite and PostgreSQL: migrations, schema matching the models, constraints."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import IntegrityError

import childguard.store.account_models
import childguard.store.bank_signature_models
import childguard.store.crawl_models
import childguard.store.hotline_models
import childguard.store.idempotency_models
import childguard.store.job_models
import childguard.store.org_page_models
import childguard.store.protect_models
import childguard.store.referral_models
import childguard.store.scheduler_models
import childguard.store.webhook_models  # noqa: F401  (every model's table in Base.metadata)
from childguard.store import AuditEvent, Bank, BankEntry, Base, Store, StoreError, open_store
from childguard.store.db import alembic_config

MY_TABLES = {"bank", "bank_entry", "audit_event"}


def test_open_store_migrates_to_head(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert tables >= MY_TABLES
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    with store.engine.connect() as conn:
        assert set(MigrationContext.configure(conn).get_current_heads()) == heads
    assert "0001_banks" in {
        r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }


def test_models_match_the_migrations(store: Store) -> None:
    """Every table the models declare is what the migrations build."""
    tables = set(Base.metadata.tables)
    assert {"referral_route", "notice_route", "item_route", "notice", "sighting"} <= tables
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)

    def table_of(d: object) -> str | None:
        item = d[0] if isinstance(d, list) else d
        for part in item[1:] if isinstance(item, tuple) else ():
            name = getattr(part, "name", None)
            table = getattr(part, "table", None)
            if table is not None:
                return str(table.name)
            if isinstance(part, str) and part in tables:
                return part
            if name in tables:
                return str(name)
        return None

    mine = [d for d in diff if table_of(d) in tables]
    assert mine == []


def test_reopening_is_idempotent(store_url: str) -> None:
    for _ in range(2):
        s = open_store(store_url)
        with s.session() as session:
            session.add(Bank(name=f"b{_}", kind="allow"))
        s.close()
    s = open_store(store_url)
    with s.session() as session:
        assert session.scalars(select(Bank.name).order_by(Bank.name)).all() == ["b0", "b1"]
    s.close()


def test_unique_entry_and_cascade_delete(store: Store) -> None:
    with store.session() as session:
        bank = Bank(name="x", kind="known-abuse")
        session.add(bank)
        session.flush()
        bank_id = bank.id
        session.execute(
            insert(BankEntry).values(bank_id=bank_id, signal_type="md5", value="0" * 32)
        )
    with pytest.raises(IntegrityError), store.session() as session:
        session.execute(
            insert(BankEntry).values(bank_id=bank_id, signal_type="md5", value="0" * 32)
        )
    with store.session() as session:
        session.execute(text("DELETE FROM bank WHERE id = :i"), {"i": bank_id})
    with store.session() as session:
        assert session.scalars(select(BankEntry)).all() == []


def test_bank_kind_is_checked(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session() as session:
        session.add(Bank(name="bad", kind="not-a-kind"))


def test_timestamps_come_back_aware_utc(store: Store) -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    with store.session() as session:
        session.add(
            AuditEvent(
                at=when, actor="t", action="a", object_type="o", object_id="1", details={"k": [1]}
            )
        )
    with store.session() as session:
        ev = session.scalars(select(AuditEvent)).one()
    assert ev.at == when and ev.at.tzinfo is not None
    assert ev.details == {"k": [1]}


def test_sqlite_pragmas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    s = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    with s.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    s.close()


def test_bare_path_means_sqlite(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    s = open_store(str(tmp_path / "sub" / "bare.db"))
    assert s.dialect == "sqlite"
    assert (tmp_path / "sub" / "bare.db").exists()
    s.close()


def test_unreachable_server_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open the store"):
        open_store("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
