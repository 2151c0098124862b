"""URLs of any length are kept: URL columns become TEXT, indexes move to fixed-length keys.

PostgreSQL refused a crawled URL over 2,000 characters (`VARCHAR(2000)`) and a sighting whose
page and image URLs together passed its B-tree row limit (about 2.7 KB), so such sightings
were lost. Each indexed URL column (crawl image cache, sightings, page counters, album view
observations) gets a key column (`childguard.store.url_keys.url_key`, the hex SHA-256 of the
URL), computed here for existing rows; unique constraints and lookups use it. The URLs that
are not indexed (published photo, webhook) just become TEXT.

Downgrading narrows the URLs back to `VARCHAR(2000)`, which fails if longer URLs were stored.

Revision ID: 0005_url_keys
Revises: 0004_content_robust
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

from childguard.store.url_keys import url_key

revision: str = "0005_url_keys"
down_revision: str | None = "0004_content_robust"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.String(64)
OLD_URL = sa.String(2000)
BATCH = 5000


def _fill_keys(table: str, columns: dict[str, str]) -> None:
    """Set each key column (value) from its URL column (key) for the rows already stored."""
    bind = op.get_bind()
    urls = ", ".join(columns)
    sets = ", ".join(f"{key} = :{key}" for key in columns.values())
    update = sa.text(f"UPDATE {table} SET {sets} WHERE id = :id")
    last = 0
    while True:
        rows = bind.execute(
            sa.text(f"SELECT id, {urls} FROM {table} WHERE id > :last ORDER BY id LIMIT {BATCH}"),
            {"last": last},
        ).all()
        if not rows:
            return
        bind.execute(
            update,
            [
                {
                    "id": row[0],
                    **{key: url_key(row[i + 1] or "") for i, key in enumerate(columns.values())},
                }
                for row in rows
            ],
        )
        last = rows[-1][0]


class _Keyed(NamedTuple):
    """One table whose URL columns get keys: its unique constraint (and index) before/after.
    (A NamedTuple: Alembic loads this file outside sys.modules, where dataclasses fail.)"""

    table: str
    keys: dict[str, str]  # URL column -> its key column
    unique_before: tuple[str, list[str]]  # (name, columns)
    unique_after: tuple[str, list[str]]
    index_change: tuple[str, list[str], list[str]] | None = None  # (name, columns before, after)


KEYED = (
    _Keyed(
        "crawled_image",
        {"url": "url_key"},
        ("uq_crawled_image_url", ["url"]),
        ("uq_crawled_image_url_key", ["url_key"]),
    ),
    _Keyed(
        "sighting",
        {"page_url": "page_key", "image_url": "image_key"},
        ("uq_sighting_page_image_match", ["page_url", "image_url", "match_key"]),
        ("uq_sighting_page_image_match", ["page_key", "image_key", "match_key"]),
    ),
    _Keyed(
        "page_counter",
        {"page_url": "page_key", "image_url": "image_key"},
        ("uq_page_counter_run_page_image", ["run_id", "page_url", "image_url"]),
        ("uq_page_counter_run_page_image", ["run_id", "page_key", "image_key"]),
        ("ix_page_counter_page", ["page_url", "observed_at"], ["page_key", "observed_at"]),
    ),
    _Keyed(
        "view_observation",
        {"album": "album_url_key", "photo_key": "photo_url_key"},
        ("uq_view_observation", ["organisation_id", "photo_key", "observed_at"]),
        ("uq_view_observation", ["organisation_id", "photo_url_key", "observed_at"]),
        (
            "ix_view_observation_album",
            ["organisation_id", "album", "observed_at"],
            ["organisation_id", "album_url_key", "observed_at"],
        ),
    ),
)
# URL columns that no index holds: they only become TEXT.
PLAIN = (("protected_photo", "published_url"), ("organisation", "webhook_url"))


def _add_keys(t: _Keyed) -> None:
    if t.index_change:
        op.drop_index(t.index_change[0], table_name=t.table)
    with op.batch_alter_table(t.table) as batch:
        for key in t.keys.values():
            batch.add_column(sa.Column(key, KEY, nullable=True))
    _fill_keys(t.table, t.keys)
    with op.batch_alter_table(t.table) as batch:
        batch.drop_constraint(t.unique_before[0], type_="unique")
        for url, key in t.keys.items():
            batch.alter_column(url, type_=sa.Text(), existing_type=OLD_URL, existing_nullable=False)
            batch.alter_column(key, existing_type=KEY, nullable=False)
        batch.create_unique_constraint(*t.unique_after)
    if t.index_change:
        op.create_index(t.index_change[0], t.table, t.index_change[2])


def _drop_keys(t: _Keyed) -> None:
    if t.index_change:
        op.drop_index(t.index_change[0], table_name=t.table)
    with op.batch_alter_table(t.table) as batch:
        batch.drop_constraint(t.unique_after[0], type_="unique")
        for url, key in t.keys.items():
            batch.alter_column(url, type_=OLD_URL, existing_type=sa.Text(), existing_nullable=False)
            batch.drop_column(key)
        batch.create_unique_constraint(*t.unique_before)
    if t.index_change:
        op.create_index(t.index_change[0], t.table, t.index_change[1])


def upgrade() -> None:
    for keyed in KEYED:
        _add_keys(keyed)
    for table, column in PLAIN:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.Text(), existing_type=OLD_URL, existing_nullable=True
            )


def downgrade() -> None:
    for table, column in PLAIN:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=OLD_URL, existing_type=sa.Text(), existing_nullable=True
            )
    for keyed in reversed(KEYED):
        _drop_keys(keyed)
