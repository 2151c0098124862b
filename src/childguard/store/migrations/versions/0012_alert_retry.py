"""Alerts keep when a failed delivery is tried again.

Revision ID: 0012_alert_retry
Revises: 0011_referrals
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_alert_retry"
down_revision: str | None = "0011_referrals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_alert_due", ["status", "next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.drop_index("ix_alert_due")
        batch.drop_column("next_attempt_at")
