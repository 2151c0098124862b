"""Banks, bank entries and the audit log.

Revision ID: 0001_banks
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001_banks"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "bank",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("pdq_threshold", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bank"),
        sa.UniqueConstraint("name", name="uq_bank_name"),
        sa.CheckConstraint("kind IN ('known-abuse', 'protected', 'allow')", name="ck_bank_kind"),
        sa.CheckConstraint(
            "pdq_threshold >= 0 AND pdq_threshold <= 256", name="ck_bank_pdq_threshold"
        ),
    )
    op.create_table(
        "bank_entry",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("signal_type", sa.String(32), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("source", sa.String(500), nullable=True),
        sa.Column("organisation", sa.String(200), nullable=True),
        sa.Column("imported_at", _TS, nullable=False),
        sa.Column("original_id", sa.String(200), nullable=True),
        sa.Column("classification_scheme", sa.String(64), nullable=True),
        sa.Column("classification_label", sa.String(64), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_bank_entry"),
        sa.ForeignKeyConstraint(
            ["bank_id"], ["bank.id"], name="fk_bank_entry_bank_id_bank", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("bank_id", "signal_type", "value", name="uq_bank_entry_value"),
    )
    op.create_index("ix_bank_entry_lookup", "bank_entry", ["signal_type", "value"])
    op.create_table(
        "audit_event",
        sa.Column("id", _BIGID, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(200), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_event"),
    )
    op.create_index("ix_audit_event_at", "audit_event", ["at"])
    op.create_index("ix_audit_event_object", "audit_event", ["object_type", "object_id"])


def downgrade() -> None:
    op.drop_table("audit_event")
    op.drop_table("bank_entry")
    op.drop_table("bank")
