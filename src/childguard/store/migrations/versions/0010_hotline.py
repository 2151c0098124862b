"""The hotline: reports and their URLs, items and the places they were seen, assessments and
their labels, analysts' daily exposure.

Revision ID: 0010_hotline
Revises: 0009_service
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_hotline"
down_revision: str | None = "0009_service"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "report",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tracking_hash", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("reporter", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("hints", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("email_encrypted", sa.LargeBinary(), nullable=True),
        sa.Column("received_at", _TS, nullable=False),
        sa.CheckConstraint("channel IN ('web', 'api')", name=op.f("ck_report_channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report")),
        sa.UniqueConstraint("tracking_hash", name=op.f("uq_report_tracking_hash")),
    )
    op.create_index(op.f("ix_report_received_at"), "report", ["received_at"], unique=False)
    op.create_table(
        "report_url",
        sa.Column("id", _ID, nullable=False),
        sa.Column("report_id", _ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("content_type", sa.String(length=200), nullable=True),
        sa.Column("fetched_at", _TS, nullable=True),
        sa.Column("trace", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("traced_at", _TS, nullable=True),
        sa.Column("state_changed_at", _TS, nullable=False),
        sa.CheckConstraint(
            "state IN ('received', 'fetched', 'traced', 'in-review', 'assessed', 'fetch-failed')",
            name=op.f("ck_report_url_state"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_report_url_report_id_report"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_url")),
        sa.UniqueConstraint("report_id", "url_key", name="uq_report_url_report_url"),
    )
    op.create_index("ix_report_url_due", "report_url", ["state", "next_attempt_at"], unique=False)
    op.create_table(
        "analyst_exposure",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("reveals", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_analyst_exposure_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "day", name=op.f("pk_analyst_exposure")),
    )
    op.create_table(
        "item",
        sa.Column("id", _ID, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("md5", sa.String(length=32), nullable=True),
        sa.Column("pdq", sa.String(length=64), nullable=True),
        sa.Column("content_type", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=True),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("signals", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("matches", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("duplicate_of", _ID, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column("assessed_at", _TS, nullable=True),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.Column("times_seen", sa.Integer(), nullable=False),
        sa.Column("locked_by", sa.Integer(), nullable=True),
        sa.Column("locked_until", _TS, nullable=True),
        sa.Column("evidence_path", sa.Text(), nullable=True),
        sa.Column("evidence_expires_at", _TS, nullable=True),
        sa.Column("evidence_purged_at", _TS, nullable=True),
        sa.CheckConstraint(
            "state IN ('new', 'in-review', 'assessed', 'inherited')", name=op.f("ck_item_state")
        ),
        sa.ForeignKeyConstraint(
            ["duplicate_of"],
            ["item.id"],
            name=op.f("fk_item_duplicate_of_item"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["locked_by"],
            ["user_account.id"],
            name=op.f("fk_item_locked_by_user_account"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item")),
        sa.UniqueConstraint("sha256", name=op.f("uq_item_sha256")),
    )
    op.create_index(op.f("ix_item_duplicate_of"), "item", ["duplicate_of"], unique=False)
    op.create_index("ix_item_pdq", "item", ["pdq"], unique=False)
    op.create_index("ix_item_queue", "item", ["state", "priority", "first_seen"], unique=False)
    op.create_table(
        "assessment",
        sa.Column("id", _ID, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("analyst", sa.String(length=200), nullable=False),
        sa.Column("facts", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("inherited_from", _ID, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('vote', 'final', 'inherited', 'supervisor')", name=op.f("ck_assessment_kind")
        ),
        sa.CheckConstraint(
            "outcome IN ('baseline', 'nationally-illegal', 'not-illegal', 'harvested', "
            "'undetermined')",
            name=op.f("ck_assessment_outcome"),
        ),
        sa.ForeignKeyConstraint(
            ["inherited_from"],
            ["assessment.id"],
            name=op.f("fk_assessment_inherited_from_assessment"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_assessment_item_id_item"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment")),
    )
    op.create_index(op.f("ix_assessment_item_id"), "assessment", ["item_id"], unique=False)
    op.create_table(
        "item_place",
        sa.Column("id", _ID, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("report_id", _ID, nullable=True),
        sa.Column("report_url_id", _ID, nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_key", sa.String(length=64), nullable=False),
        sa.Column("page_url", sa.Text(), nullable=True),
        sa.Column("first_seen", _TS, nullable=False),
        sa.Column("last_seen", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_item_place_item_id_item"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["report_id"],
            ["report.id"],
            name=op.f("fk_item_place_report_id_report"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["report_url_id"],
            ["report_url.id"],
            name=op.f("fk_item_place_report_url_id_report_url"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_place")),
        sa.UniqueConstraint("item_id", "report_url_id", "url_key", name="uq_item_place_seen"),
    )
    op.create_index(op.f("ix_item_place_item_id"), "item_place", ["item_id"], unique=False)
    op.create_index("ix_item_place_report", "item_place", ["report_id"], unique=False)
    op.create_table(
        "assessment_label",
        sa.Column("assessment_id", _ID, nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("profile", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessment.id"],
            name=op.f("fk_assessment_label_assessment_id_assessment"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "assessment_id", "scheme", "profile", name=op.f("pk_assessment_label")
        ),
    )


def downgrade() -> None:
    op.drop_table("assessment_label")
    op.drop_table("item_place")
    op.drop_table("assessment")
    op.drop_table("item")
    op.drop_table("analyst_exposure")
    op.drop_table("report_url")
    op.drop_table("report")
