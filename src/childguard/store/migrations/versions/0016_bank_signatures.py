"""The protected-style signatures held with bank entries (the hotline's own known-abuse items).

Revision ID: 0016_bank_signatures
Revises: 0014_org_pages
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_bank_signatures"
down_revision: str | None = "0014_org_pages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bank_signature",
        sa.Column(
            "bank_entry_id",
            _BIG_ID,
            sa.ForeignKey(
                "bank_entry.id",
                ondelete="CASCADE",
                name="fk_bank_signature_bank_entry_id_bank_entry",
            ),
            nullable=False,
        ),
        sa.Column("signature", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bank_entry_id", name="pk_bank_signature"),
    )


def downgrade() -> None:
    op.drop_table("bank_signature")
