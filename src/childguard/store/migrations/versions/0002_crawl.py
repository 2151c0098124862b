"""Crawler tables: watches, crawl runs, the image cache, content hashes, sightings, page counters.

Revision ID: 0002_crawl
Revises: 0001_banks
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_crawl"
down_revision: str | None = "0001_banks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crawl_watch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("last_run_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_watch"),
        sa.UniqueConstraint("name", name="uq_crawl_watch_name"),
    )
    op.create_table(
        "crawl_run",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=True),
        sa.Column("watch_name", sa.String(100), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("obey_robots", sa.Boolean(), nullable=False),
        sa.Column("robots_override_reason", sa.Text(), nullable=True),
        sa.Column("allow_private", sa.Boolean(), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_crawl_run"),
        sa.ForeignKeyConstraint(
            ["watch_id"],
            ["crawl_watch.id"],
            name="fk_crawl_run_watch_id_crawl_watch",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "status IN ('running', 'finished', 'failed')", name="ck_crawl_run_status"
        ),
    )
    op.create_index("ix_crawl_run_watch_id", "crawl_run", ["watch_id"])
    op.create_table(
        "crawled_image",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("etag", sa.String(500), nullable=True),
        sa.Column("last_modified", sa.String(100), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("first_fetched_at", _TS, nullable=False),
        sa.Column("last_checked_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_crawled_image"),
        sa.UniqueConstraint("url", name="uq_crawled_image_url"),
    )
    op.create_index("ix_crawled_image_sha256", "crawled_image", ["sha256"])
    op.create_table(
        "content_hashes",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("pdq", sa.String(64), nullable=True),
        sa.Column("pdq_quality", sa.Integer(), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("hashed_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_content_hashes"),
    )
    op.create_table(
        "sighting",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("watch_name", sa.String(100), nullable=True),
        sa.Column("site", sa.String(300), nullable=False),
        sa.Column("page_url", sa.String(2000), nullable=False),
        sa.Column("page_title", sa.String(1000), nullable=True),
        sa.Column("image_url", sa.String(2000), nullable=False),
        sa.Column("entry_id", _BIGID, nullable=True),
        sa.Column("match_key", sa.String(300), nullable=False),
        sa.Column("bank", sa.String(200), nullable=True),
        sa.Column("bank_kind", sa.String(20), nullable=True),
        sa.Column("organisation", sa.String(200), nullable=True),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("distance", sa.Integer(), nullable=False),
        sa.Column("image_sha256", sa.String(64), nullable=True),
        sa.Column("image_pdq", sa.String(64), nullable=True),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_changed_at", _TS, nullable=False),
        sa.Column("removed_at", _TS, nullable=True),
        sa.Column("first_run_id", _BIGID, nullable=True),
        sa.Column("last_run_id", _BIGID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sighting"),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["bank_entry.id"],
            name="fk_sighting_entry_id_bank_entry",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint(
            "page_url", "image_url", "match_key", name="uq_sighting_page_image_match"
        ),
        sa.CheckConstraint("status IN ('online', 'removed', 'changed')", name="ck_sighting_status"),
    )
    op.create_index("ix_sighting_entry_id", "sighting", ["entry_id"])
    op.create_index("ix_sighting_organisation", "sighting", ["organisation"])
    op.create_index("ix_sighting_status_site", "sighting", ["status", "site"])
    op.create_index("ix_sighting_watch", "sighting", ["watch_name", "status"])
    op.create_table(
        "page_counter",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("run_id", _BIGID, nullable=False),
        sa.Column("page_url", sa.String(2000), nullable=False),
        sa.Column("image_url", sa.String(2000), nullable=False),
        sa.Column("observed_at", _TS, nullable=False),
        sa.Column("views", sa.Integer(), nullable=True),
        sa.Column("comments", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_page_counter"),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["crawl_run.id"],
            name="fk_page_counter_run_id_crawl_run",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "run_id", "page_url", "image_url", name="uq_page_counter_run_page_image"
        ),
    )
    op.create_index("ix_page_counter_page", "page_counter", ["page_url", "observed_at"])


def downgrade() -> None:
    op.drop_table("page_counter")
    op.drop_table("sighting")
    op.drop_table("content_hashes")
    op.drop_table("crawled_image")
    op.drop_table("crawl_run")
    op.drop_table("crawl_watch")
