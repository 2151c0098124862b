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


def upgrade() -> None:
    with op.batch_alter_table("crawled_image") as batch:
        batch.add_column(sa.Column("url_key", KEY, nullable=True))
    _fill_keys("crawled_image", {"url": "url_key"})
    with op.batch_alter_table("crawled_image") as batch:
        batch.drop_constraint("uq_crawled_image_url", type_="unique")
        batch.alter_column("url", type_=sa.Text(), existing_type=OLD_URL, existing_nullable=False)
        batch.alter_column("url_key", existing_type=KEY, nullable=False)
        batch.create_unique_constraint("uq_crawled_image_url_key", ["url_key"])

    with op.batch_alter_table("sighting") as batch:
        batch.add_column(sa.Column("page_key", KEY, nullable=True))
        batch.add_column(sa.Column("image_key", KEY, nullable=True))
    _fill_keys("sighting", {"page_url": "page_key", "image_url": "image_key"})
    with op.batch_alter_table("sighting") as batch:
        batch.drop_constraint("uq_sighting_page_image_match", type_="unique")
        for column in ("page_url", "image_url"):
            batch.alter_column(
                column, type_=sa.Text(), existing_type=OLD_URL, existing_nullable=False
            )
        for column in ("page_key", "image_key"):
            batch.alter_column(column, existing_type=KEY, nullable=False)
        batch.create_unique_constraint(
            "uq_sighting_page_image_match", ["page_key", "image_key", "match_key"]
        )

    op.drop_index("ix_page_counter_page", table_name="page_counter")
    with op.batch_alter_table("page_counter") as batch:
        batch.add_column(sa.Column("page_key", KEY, nullable=True))
        batch.add_column(sa.Column("image_key", KEY, nullable=True))
    _fill_keys("page_counter", {"page_url": "page_key", "image_url": "image_key"})
    with op.batch_alter_table("page_counter") as batch:
        batch.drop_constraint("uq_page_counter_run_page_image", type_="unique")
        for column in ("page_url", "image_url"):
            batch.alter_column(
                column, type_=sa.Text(), existing_type=OLD_URL, existing_nullable=False
            )
        for column in ("page_key", "image_key"):
            batch.alter_column(column, existing_type=KEY, nullable=False)
        batch.create_unique_constraint(
            "uq_page_counter_run_page_image", ["run_id", "page_key", "image_key"]
        )
    op.create_index("ix_page_counter_page", "page_counter", ["page_key", "observed_at"])

    op.drop_index("ix_view_observation_album", table_name="view_observation")
    with op.batch_alter_table("view_observation") as batch:
        batch.add_column(sa.Column("album_url_key", KEY, nullable=True))
        batch.add_column(sa.Column("photo_url_key", KEY, nullable=True))
    _fill_keys("view_observation", {"album": "album_url_key", "photo_key": "photo_url_key"})
    with op.batch_alter_table("view_observation") as batch:
        batch.drop_constraint("uq_view_observation", type_="unique")
        for column in ("album", "photo_key"):
            batch.alter_column(
                column, type_=sa.Text(), existing_type=OLD_URL, existing_nullable=False
            )
        for column in ("album_url_key", "photo_url_key"):
            batch.alter_column(column, existing_type=KEY, nullable=False)
        batch.create_unique_constraint(
            "uq_view_observation", ["organisation_id", "photo_url_key", "observed_at"]
        )
    op.create_index(
        "ix_view_observation_album",
        "view_observation",
        ["organisation_id", "album_url_key", "observed_at"],
    )

    for table, column in (("protected_photo", "published_url"), ("organisation", "webhook_url")):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=sa.Text(), existing_type=OLD_URL, existing_nullable=True
            )


def downgrade() -> None:
    for table, column in (("protected_photo", "published_url"), ("organisation", "webhook_url")):
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                column, type_=OLD_URL, existing_type=sa.Text(), existing_nullable=True
            )

    op.drop_index("ix_view_observation_album", table_name="view_observation")
    with op.batch_alter_table("view_observation") as batch:
        batch.drop_constraint("uq_view_observation", type_="unique")
        for column in ("album", "photo_key"):
            batch.alter_column(
                column, type_=OLD_URL, existing_type=sa.Text(), existing_nullable=False
            )
        batch.drop_column("photo_url_key")
        batch.drop_column("album_url_key")
        batch.create_unique_constraint(
            "uq_view_observation", ["organisation_id", "photo_key", "observed_at"]
        )
    op.create_index(
        "ix_view_observation_album", "view_observation", ["organisation_id", "album", "observed_at"]
    )

    op.drop_index("ix_page_counter_page", table_name="page_counter")
    with op.batch_alter_table("page_counter") as batch:
        batch.drop_constraint("uq_page_counter_run_page_image", type_="unique")
        for column in ("page_url", "image_url"):
            batch.alter_column(
                column, type_=OLD_URL, existing_type=sa.Text(), existing_nullable=False
            )
        batch.drop_column("image_key")
        batch.drop_column("page_key")
        batch.create_unique_constraint(
            "uq_page_counter_run_page_image", ["run_id", "page_url", "image_url"]
        )
    op.create_index("ix_page_counter_page", "page_counter", ["page_url", "observed_at"])

    with op.batch_alter_table("sighting") as batch:
        batch.drop_constraint("uq_sighting_page_image_match", type_="unique")
        for column in ("page_url", "image_url"):
            batch.alter_column(
                column, type_=OLD_URL, existing_type=sa.Text(), existing_nullable=False
            )
        batch.drop_column("image_key")
        batch.drop_column("page_key")
        batch.create_unique_constraint(
            "uq_sighting_page_image_match", ["page_url", "image_url", "match_key"]
        )

    with op.batch_alter_table("crawled_image") as batch:
        batch.drop_constraint("uq_crawled_image_url_key", type_="unique")
        batch.drop_column("url_key")
        batch.alter_column("url", type_=OLD_URL, existing_type=sa.Text(), existing_nullable=False)
        batch.create_unique_constraint("uq_crawled_image_url", ["url"])
