"""The crawl's content cache keeps the robust query views and ORB features of each image.

Revision ID: 0004_content_robust
Revises: 0003_protect
Create Date: 2025-01-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_content_robust"
down_revision: str | None = "0003_protect"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("content_hashes") as batch:
        batch.add_column(sa.Column("robust", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("content_hashes") as batch:
        batch.drop_column("robust")
