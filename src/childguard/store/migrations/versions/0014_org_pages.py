"""What the organisation pages keep: sighting states set by the organisation and its last visit.

Revision ID: 0014_org_pages
Revises: 0013_scheduler
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0014_org_pages"
down_revision: str | None = "0013_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
