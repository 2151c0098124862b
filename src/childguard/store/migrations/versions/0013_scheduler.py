"""Scheduled tasks keep their runs, errors and next run, and a lease one service node holds.

Revision ID: 0013_scheduler
Revises: 0012_alert_retry
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_scheduler"
down_revision: str | None = "0012_alert_retry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "task_lease",
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("interval_seconds", sa.Float(), nullable=False),
        sa.Column("next_run_at", _TS, nullable=False),
        sa.Column("lease_holder", sa.String(200), nullable=True),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("last_run_id", sa.BigInteger(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("task", name="pk_task_lease"),
    )
    op.create_table(
        "task_run",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("node", sa.String(200), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("summary", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_task_run"),
        sa.CheckConstraint("status IN ('running', 'ok', 'failed')", name="ck_task_run_status"),
    )
    op.create_index("ix_task_run_task_started", "task_run", ["task", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_task_run_task_started", table_name="task_run")
    op.drop_table("task_run")
    op.drop_table("task_lease")
