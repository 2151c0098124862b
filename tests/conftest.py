"""Shared pytest fixtures. Each section is owned by the engineer named in its header."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


# ---------------------------------------------------------------------------------------------
# Store fixtures (owner: helper B, issue 4): a throwaway PostgreSQL cluster for the session, and
# `store_url` / `store`, parametrized so every store test runs on SQLite and on PostgreSQL.
# PostgreSQL tests are never skipped: if the cluster cannot start, they fail with the reason.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[object]:
    """A private PostgreSQL 15 cluster (initdb + pg_ctl), stopped and removed at session end."""
    from childguard.store.throwaway_pg import PostgresUnavailable, ThrowawayPostgres

    try:
        cluster = ThrowawayPostgres().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"the throwaway PostgreSQL cluster could not start: {exc}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database: a SQLite file, or a new database in the cluster."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    url: str = cluster.create_database()
    try:
        yield url
    finally:
        cluster.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def store(store_url: str) -> Iterator[object]:
    """An open, migrated store on `store_url`; closed after the test."""
    from childguard.store import open_store

    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


# ------------------------------------ end of store fixtures ------------------------------------
