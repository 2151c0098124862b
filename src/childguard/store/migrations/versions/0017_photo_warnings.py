"""Protected photos keep their warning (`protect.register.warning_code`): the photos stored
before get theirs from their stored signature, so pages count and filter on it.

Revision ID: 0017_photo_warnings
Revises: 0016_bank_signatures
Create Date: 2026-12-06
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0017_photo_warnings"
down_revision: str | None = "0016_bank_signatures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Photos read at a time: a signature is about 11 KB of JSON.
BATCH = 500


def upgrade() -> None:
    with op.batch_alter_table("protected_photo") as batch:
        batch.add_column(sa.Column("warning", sa.String(16), nullable=True))
    op.create_index("ix_protected_photo_warning", "protected_photo", ["organisation_id", "warning"])
    _fill_warnings()


def downgrade() -> None:
    op.drop_index("ix_protected_photo_warning", table_name="protected_photo")
    with op.batch_alter_table("protected_photo") as batch:
        batch.drop_column("warning")


def _signatures(value: Any) -> dict[str, Any] | None:
    """The stored JSON column as read by a plain SELECT: text on SQLite, decoded on
    PostgreSQL."""
    if value is None or isinstance(value, dict):
        return value
    decoded = json.loads(value)
    return decoded if isinstance(decoded, dict) else None


def _fill_warnings() -> None:
    """Each stored photo's warning, by the rule its writer applies. Imported here, not at the
    top: Alembic reads every revision file whenever it looks for the head, and the rule needs
    the robust signature's code, which a store being opened has no need of."""
    from childguard.protect.register import warning_code

    bind = op.get_bind()
    update = sa.text("UPDATE protected_photo SET warning = :warning WHERE id = :id")
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, pdq, pdq_quality, width, height, signatures FROM protected_photo "
                f"WHERE id > :last ORDER BY id LIMIT {BATCH}"
            ),
            {"last": last},
        ).all()
        if not rows:
            return
        warned = [
            {"id": row[0], "warning": code}
            for row in rows
            if (code := warning_code(row[1], row[2], row[3], row[4], _signatures(row[5])))
        ]
        if warned:
            bind.execute(update, warned)
        last = rows[-1][0]
