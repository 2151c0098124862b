"""Shared pytest fixtures (the store, the photos, the environment) and the order of the files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The files that take longest, run first: the suite spreads whole files over two workers
# (`--dist loadfile`), and a long file dealt out last keeps one worker busy while the other idles.
HEAVY_FIRST = (
    "tests/demo/test_story.py",
    "tests/web/test_org_register_browser.py",
    "tests/test_conformance.py",
    "tests/crawl/test_crawl_basic.py",
    "tests/banks/test_concurrent_imports.py",
    "tests/web/test_review_pages.py",
    "tests/service/test_org_tasks.py",
    "tests/crawl/test_robust_crawl.py",
    "tests/protect/test_register.py",
    "tests/matcher/test_protected_verification.py",
    "tests/hostile/test_hashlists.py",
    "tests/service/test_ops_serve.py",
    "tests/cli/test_crawl_truth.py",
    "tests/web/test_org_pages.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Deal the heaviest files out first; every other file keeps its place."""
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


# ---------------------------------------------------------------------------------------------
# Store fixtures: a throwaway PostgreSQL cluster for the session, and
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


@pytest.fixture(scope="session")
def postgres_database(postgres_cluster: object) -> str:
    """URL of one PostgreSQL database for the session, migrated to the latest schema."""
    from childguard.store import open_store

    url: str = postgres_cluster.create_database("childguard_test")  # type: ignore[attr-defined]
    open_store(url).close()
    return url


def _empty_postgres(url: str) -> None:
    """Truncate every table but alembic_version (much faster than a new database per test)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        tables = [t for t in inspect(engine).get_table_names() if t != "alembic_version"]
        if tables:
            with engine.begin() as conn:
                names = ", ".join(f'"{t}"' for t in tables)
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store migrated to the latest schema once per session, for `store_url` to copy
    (migrating a new file costs ten times more than copying one)."""
    from childguard.store import open_store

    path = tmp_path_factory.mktemp("sqlite-template") / "store.db"
    open_store(f"sqlite:///{path}").close()
    return path


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store at the latest schema: a new SQLite file (a copy of the
    session's migrated template), or the session's PostgreSQL database with every table
    emptied; open_store still checks the migrations. For a database with no schema at all,
    use a SQLite path of your own or `postgres_cluster.create_database()`."""
    if request.param == "sqlite":
        import shutil

        path = tmp_path / "store.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_database")
    _empty_postgres(url)
    yield url


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


# ---------------------------------------------------------------------------------------------
# Photo fixtures: the real, licence-clean photos that `make photos`
# (scripts/fetch_photos.py) puts in .cache/photos. Missing photos fail, they are never skipped.
# ---------------------------------------------------------------------------------------------

PHOTOS_DIR = Path(__file__).resolve().parents[1] / ".cache" / "photos"


@pytest.fixture(scope="session")
def photos_dir() -> Path:
    """The folder of real photos (with manifest.csv); fails with the fix if it is missing."""
    if not (PHOTOS_DIR / ".ready").exists():
        pytest.fail(f"no real photos in {PHOTOS_DIR}: run `make photos` first", pytrace=False)
    return PHOTOS_DIR


@pytest.fixture(scope="session")
def real_photos(photos_dir: Path) -> list[Path]:
    """Every photo listed in the manifest, sorted (about 45 JPEGs of 1 to 16 megapixels)."""
    import csv

    with (photos_dir / "manifest.csv").open(newline="") as fh:
        photos = sorted(photos_dir / row["file"] for row in csv.DictReader(fh))
    missing = [p for p in photos if not p.exists()]
    if missing or not photos:
        reason = f"photo manifest and files disagree ({missing[:3]}); run `make photos`"
        pytest.fail(reason, pytrace=False)
    return photos


# ------------------------------------ end of photo fixtures ------------------------------------


@pytest.fixture(autouse=True)
def _environment_restored() -> Iterator[None]:
    """Each test sees the environment the suite started with: `childguard serve` exports its
    settings (CHILDGUARD_*, PROMETHEUS_MULTIPROC_DIR) for its workers, and a serve run
    in-process by one test must not hand them to the next."""
    import os

    saved = dict(os.environ)
    yield
    for name in set(os.environ) - set(saved):
        del os.environ[name]
    os.environ.update(saved)
