"""Organisations, protected photos and their bank-entry links, view observations, alerts.

Revision ID: 0003_protect
Revises: 0002_crawl
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_protect"
down_revision: str | None = "0002_crawl"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "organisation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("webhook_url", sa.String(2000), nullable=True),
        sa.Column("webhook_secret", sa.String(200), nullable=True),
        sa.Column("alert_mode", sa.String(16), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_digest_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_organisation"),
        sa.UniqueConstraint("name", name="uq_organisation_name"),
        sa.UniqueConstraint("bank_id", name="uq_organisation_bank_id"),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["bank.id"], name="fk_organisation_bank_id_bank", ondelete="RESTRICT"
        ),
        sa.CheckConstraint(
            "alert_mode IN ('immediate', 'daily')", name="ck_organisation_alert_mode"
        ),
    )
    op.create_table(
        "protected_photo",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(500), nullable=False),
        sa.Column("title", sa.String(500), nullable=True),
        sa.Column("published_url", sa.String(2000), nullable=True),
        sa.Column("published_at", _TS, nullable=True),
        sa.Column("registered_at", _TS, nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("md5", sa.String(32), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("pdq", sa.String(64), nullable=False),
        sa.Column("pdq_quality", sa.Integer(), nullable=False),
        sa.Column("signatures", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_protected_photo"),
        sa.UniqueConstraint("organisation_id", "sha256", name="uq_protected_photo_sha256"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name="fk_protected_photo_organisation_id_organisation",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "protected_signal",
        sa.Column("photo_id", _BIGID, nullable=False),
        sa.Column("bank_entry_id", _BIGID, nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("photo_id", "bank_entry_id", name="pk_protected_signal"),
        sa.ForeignKeyConstraint(
            ["photo_id"],
            ["protected_photo.id"],
            name="fk_protected_signal_photo_id_protected_photo",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["bank_entry_id"],
            ["bank_entry.id"],
            name="fk_protected_signal_bank_entry_id_bank_entry",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_protected_signal_bank_entry_id", "protected_signal", ["bank_entry_id"])
    op.create_table(
        "view_observation",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("album", sa.String(2000), nullable=False),
        sa.Column("photo_key", sa.String(2000), nullable=False),
        sa.Column("protected_photo_id", _BIGID, nullable=True),
        sa.Column("observed_at", _TS, nullable=False),
        sa.Column("views", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_view_observation"),
        sa.UniqueConstraint(
            "organisation_id", "photo_key", "observed_at", name="uq_view_observation"
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name="fk_view_observation_organisation_id_organisation",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["protected_photo_id"],
            ["protected_photo.id"],
            name="fk_view_observation_protected_photo_id_protected_photo",
            ondelete="SET NULL",
        ),
    )
    op.create_index(
        "ix_view_observation_album",
        "view_observation",
        ["organisation_id", "album", "observed_at"],
    )
    op.create_table(
        "alert",
        sa.Column("id", _BIGID, primary_key=True),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("dedupe_key", sa.String(300), nullable=False),
        sa.Column("sighting_id", _BIGID, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("email_sent_at", _TS, nullable=True),
        sa.Column("webhook_sent_at", _TS, nullable=True),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert"),
        sa.UniqueConstraint("organisation_id", "dedupe_key", name="uq_alert_dedupe"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name="fk_alert_organisation_id_organisation",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "kind IN ('sighting', 'view-spike', 'album-surge')", name="ck_alert_kind"
        ),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_alert_status"),
    )
    op.create_index("ix_alert_status", "alert", ["status", "organisation_id"])
    op.create_index("ix_alert_sighting_id", "alert", ["sighting_id"])


def downgrade() -> None:
    op.drop_table("alert")
    op.drop_table("view_observation")
    op.drop_table("protected_signal")
    op.drop_table("protected_photo")
    op.drop_table("organisation")
