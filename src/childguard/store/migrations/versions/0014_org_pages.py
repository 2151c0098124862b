"""What the organisation pages keep: sighting states set by the organisation and its last visit.

Revision ID: 0014_org_pages
Revises: 0013_scheduler
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_org_pages"
down_revision: str | None = "0013_scheduler"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "org_sighting_state",
        sa.Column("id", _BIG_ID, primary_key=True),
        sa.Column(
            "organisation_id",
            sa.Integer(),
            sa.ForeignKey(
                "organisation.id",
                ondelete="CASCADE",
                name="fk_org_sighting_state_organisation_id_organisation",
            ),
            nullable=False,
        ),
        sa.Column(
            "sighting_id",
            _BIG_ID,
            sa.ForeignKey(
                "sighting.id", ondelete="CASCADE", name="fk_org_sighting_state_sighting_id_sighting"
            ),
            nullable=False,
        ),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "hotline_report_id",
            _BIG_ID,
            sa.ForeignKey(
                "report.id",
                ondelete="SET NULL",
                name="fk_org_sighting_state_hotline_report_id_report",
            ),
            nullable=True,
        ),
        sa.Column("allow", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_org_sighting_state"),
        sa.UniqueConstraint("organisation_id", "sighting_id", name="uq_org_sighting_state"),
        sa.CheckConstraint(
            "state IN ('new', 'seen', 'false-alarm', 'reported')",
            name="ck_org_sighting_state_state",
        ),
    )
    op.create_index(
        "ix_org_sighting_state_organisation_id", "org_sighting_state", ["organisation_id"]
    )
    op.create_index("ix_org_sighting_state_sighting_id", "org_sighting_state", ["sighting_id"])
    op.create_table(
        "org_visit",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey(
                "user_account.id", ondelete="CASCADE", name="fk_org_visit_user_id_user_account"
            ),
            nullable=False,
        ),
        sa.Column(
            "organisation_id",
            sa.Integer(),
            sa.ForeignKey(
                "organisation.id",
                ondelete="CASCADE",
                name="fk_org_visit_organisation_id_organisation",
            ),
            nullable=False,
        ),
        sa.Column("visit_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_visit_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", name="pk_org_visit"),
    )
    op.create_index("ix_org_visit_organisation_id", "org_visit", ["organisation_id"])


def downgrade() -> None:
    op.drop_index("ix_org_visit_organisation_id", table_name="org_visit")
    op.drop_table("org_visit")
    op.drop_index("ix_org_sighting_state_sighting_id", table_name="org_sighting_state")
    op.drop_index("ix_org_sighting_state_organisation_id", table_name="org_sighting_state")
    op.drop_table("org_sighting_state")
