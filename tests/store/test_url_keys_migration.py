"""Migration 0005 keys the crawl tables' URLs: rows stored before it are keyed, and found.

Runs on SQLite and PostgreSQL, from a database with no schema at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import MetaData, insert, select
from sqlalchemy.exc import IntegrityError

from childguard.crawl.cache import ImageCache
from childguard.crawl.hashing import hash_fetched
from childguard.crawl.sightings import SightingRecorder, get_sighting, list_sightings
from childguard.protect.albums import album_series
from childguard.protect.organisations import get_organisation
from childguard.store.db import (
    alembic_config,
    create_store_engine,
    migration_connection,
    open_store,
    upgrade,
)
from childguard.store.protect_models import ViewObservation
from childguard.store.url_keys import url_key
from match_factory import entry_match

BEFORE = "0004_content_robust"
PAGE, IMAGE = "https://example.org/album?id=7", "https://cdn.example.org/a.jpg"
T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def bare_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    cluster = request.getfixturevalue("postgres_cluster")
    name = f"migrate_{request.node.name.split('[')[0][-20:]}"
    yield cluster.create_database(name)
    cluster.drop_database(name)


def _downgrade(url: str, revision: str) -> None:
    engine = create_store_engine(url)
    cfg = alembic_config()
    with migration_connection(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
    engine.dispose()


def _old_bank(conn: Any, meta: MetaData, name: str) -> int:
    """A protected bank row as the schema before the URL keys held it."""
    return int(
        conn.execute(
            insert(meta.tables["bank"])
            .values(
                name=name,
                kind="protected",
                description="",
                owner="",
                pdq_threshold=31,
                enabled=True,
                created_at=T0,
                updated_at=T0,
            )
            .returning(meta.tables["bank"].c.id)
        ).scalar_one()
    )


def _store_rows_as_before(url: str) -> None:
    """Rows as a childguard without URL keys wrote them (schema at 0004)."""
    engine = create_store_engine(url)
    upgrade(engine, BEFORE)
    meta = MetaData()
    meta.reflect(bind=engine)
    sha = "ab" * 32
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(meta.tables["crawl_run"])
            .values(
                watch_name="w",
                started_at=T0,
                status="finished",
                obey_robots=True,
                allow_private=False,
            )
            .returning(meta.tables["crawl_run"].c.id)
        ).scalar_one()
        conn.execute(
            insert(meta.tables["crawled_image"]).values(
                url=IMAGE, etag='"v1"', sha256=sha, first_fetched_at=T0, last_checked_at=T0
            )
        )
        b_id = _old_bank(conn, meta, "b")
        entry_id = conn.execute(
            insert(meta.tables["bank_entry"])
            .values(bank_id=b_id, signal_type="sha256", value=sha, imported_at=T0)
            .returning(meta.tables["bank_entry"].c.id)
        ).scalar_one()
        conn.execute(
            insert(meta.tables["sighting"]).values(
                watch_name="w",
                site="example.org",
                page_url=PAGE,
                image_url=IMAGE,
                entry_id=entry_id,
                match_key=f"entry:{entry_id}",
                bank="b",
                signal_type="sha256",
                distance=0,
                first_seen=T0,
                last_seen=T0,
                times_seen=1,
                status="online",
                status_changed_at=T0,
                first_run_id=run_id,
                last_run_id=run_id,
            )
        )
        bank_id = _old_bank(conn, meta, "protected-scouts")
        org_id = conn.execute(
            insert(meta.tables["organisation"])
            .values(
                name="Scouts", emails=[], alert_mode="immediate", bank_id=bank_id, created_at=T0
            )
            .returning(meta.tables["organisation"].c.id)
        ).scalar_one()
        for day, views in ((0, 100), (1, 180)):
            conn.execute(
                insert(meta.tables["view_observation"]).values(
                    organisation_id=org_id,
                    album=PAGE,
                    photo_key=IMAGE,
                    observed_at=T0 + timedelta(days=day),
                    views=views,
                )
            )
        for image_url, views in (("", 40), (IMAGE, 25)):
            conn.execute(
                insert(meta.tables["page_counter"]).values(
                    run_id=run_id,
                    page_url=PAGE,
                    image_url=image_url,
                    observed_at=T0,
                    views=views,
                )
            )
    engine.dispose()


def test_rows_stored_before_the_keys_are_keyed_and_found(bare_url: str) -> None:
    _store_rows_as_before(bare_url)
    store = open_store(bare_url)  # migrates to the latest revision
    try:
        from childguard.store.crawl_models import CrawledImage, PageCounter, Sighting

        with store.session() as s:
            assert s.scalars(select(CrawledImage.url_key)).all() == [url_key(IMAGE)]
            keys = s.execute(select(Sighting.page_key, Sighting.image_key)).all()
            assert [tuple(k) for k in keys] == [(url_key(PAGE), url_key(IMAGE))]
            counter_keys = set(s.scalars(select(PageCounter.image_key)))
            assert counter_keys == {url_key(""), url_key(IMAGE)}
        with store.session() as s:
            series = album_series(s, get_organisation(s, "Scouts"), PAGE)
            assert series == {IMAGE: [(T0, 100), (T0 + timedelta(days=1), 180)]}
        validators = ImageCache(store).validators(IMAGE)
        assert validators is not None and validators.etag == '"v1"'

        # A re-crawl finds the old sighting and updates it instead of adding a second one.
        hashes = hash_fetched(b"bytes")
        match = entry_match(store, signal_type="sha256", value="ab" * 32)
        recorder = SightingRecorder(store, run_id=None, watch_name="w")
        recorder.page(PAGE, title="", image_urls=[IMAGE], gone=False)
        recorder.image(IMAGE, page_url=PAGE, gone=False, hashes=hashes, matches=[match])
        assert (recorder.new_sightings, recorder.updated_sightings) == (0, 1)
        (row,) = list_sightings(store)
        assert row.times_seen == 2
        view = get_sighting(store, row.id)
        assert view is not None
        assert sorted(c["views"] for c in view.counters) == [25, 40]
    finally:
        store.close()

    _downgrade(bare_url, BEFORE)  # and back: the URLs fit the old columns, so nothing is lost
    store = open_store(bare_url)
    try:
        (row,) = list_sightings(store)
        assert (row.page_url, row.image_url, row.times_seen) == (PAGE, IMAGE, 2)
        # Rebuilding the organisation table on SQLite must not cascade into its children.
        with store.session() as s:
            series = album_series(s, get_organisation(s, "Scouts"), PAGE)
            assert [views for _, views in series[IMAGE]] == [100, 180]
        # Foreign keys are enforced again after migrating.
        with pytest.raises(IntegrityError), store.session() as s:
            s.add(
                ViewObservation(
                    organisation_id=999, album=PAGE, photo_key=IMAGE, observed_at=T0, views=1
                )
            )
    finally:
        store.close()
