"""Generic signal types: per-bank thresholds for any signal type, bank entry payloads for
values longer than their key (vPDQ frame lists), every signal in the content cache, and
each sighting's match as the matcher made it; protected videos have no PDQ.

Revision ID: 0006_signal_seam
Revises: 0005_url_keys
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_signal_seam"
down_revision: str | None = "0005_url_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bank") as batch:
        batch.add_column(sa.Column("thresholds", sa.JSON(), nullable=True))
    with op.batch_alter_table("bank_entry") as batch:
        batch.add_column(sa.Column("payload", sa.Text(), nullable=True))
    with op.batch_alter_table("content_hashes") as batch:
        batch.add_column(sa.Column("signals", sa.JSON(), nullable=True))
    with op.batch_alter_table("sighting") as batch:
        batch.add_column(sa.Column("match", sa.JSON(), nullable=True))
    with op.batch_alter_table("protected_photo") as batch:
        batch.alter_column("pdq", existing_type=sa.String(64), nullable=True)
        batch.alter_column("pdq_quality", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("protected_photo") as batch:
        batch.alter_column("pdq_quality", existing_type=sa.Integer(), nullable=False)
        batch.alter_column("pdq", existing_type=sa.String(64), nullable=False)
    with op.batch_alter_table("sighting") as batch:
        batch.drop_column("match")
    with op.batch_alter_table("content_hashes") as batch:
        batch.drop_column("signals")
    with op.batch_alter_table("bank_entry") as batch:
        batch.drop_column("payload")
    with op.batch_alter_table("bank") as batch:
        batch.drop_column("thresholds")
