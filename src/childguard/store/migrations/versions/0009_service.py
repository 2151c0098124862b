"""The service's tables: users, their roles and sessions; organisation-scoped keys; bank
flood control; background jobs; webhook subscriptions and deliveries.

Revision ID: 0009_service
Revises: 0008_idempotency
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_service"
down_revision: str | None = "0008_idempotency"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
_ROLES = ("hash", "match", "curate", "reporter", "analyst", "supervisor", "org-admin", "admin")
_ROLE_CHECK = "role IN (" + ", ".join(f"'{r}'" for r in _ROLES) + ")"


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("preferences", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("password_changed_at", _TS, nullable=False),
        sa.Column("disabled_at", _TS, nullable=True),
        sa.Column("last_login_at", _TS, nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_account"),
        sa.UniqueConstraint("username", name="uq_user_account_username"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name="fk_user_account_organisation_id_organisation",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_user_account_organisation_id", "user_account", ["organisation_id"])
    op.create_table(
        "user_role",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("granted_at", _TS, nullable=False),
        sa.Column("granted_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role", name="pk_user_role"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name="fk_user_role_user_id_user_account",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(_ROLE_CHECK, name="ck_user_role_role"),
    )
    op.create_table(
        "user_session",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("csrf_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_seen_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_user_session"),
        sa.UniqueConstraint("token_hash", name="uq_user_session_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name="fk_user_session_user_id_user_account",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_user_session_user_id", "user_session", ["user_id"])

    with op.batch_alter_table("api_key") as batch:
        batch.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_api_key_organisation_id_organisation",
            "organisation",
            ["organisation_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index("ix_api_key_organisation_id", ["organisation_id"])

    with op.batch_alter_table("bank") as batch:
        batch.add_column(sa.Column("match_cap_per_minute", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quarantined_at", _TS, nullable=True))
        batch.add_column(sa.Column("quarantine_reason", sa.Text(), nullable=True))

    op.create_table(
        "job",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=True),
        sa.Column("done", sa.BigInteger(), nullable=False),
        sa.Column("result", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_job"),
        sa.CheckConstraint(
            _in("status", ("queued", "running", "done", "failed", "cancelled")),
            name="ck_job_status",
        ),
    )
    op.create_index("ix_job_status_created", "job", ["status", "created_at"])

    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("banks", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("disabled_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscription"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name="fk_webhook_subscription_organisation_id_organisation",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_webhook_subscription_organisation_id", "webhook_subscription", ["organisation_id"]
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_delivery"),
        sa.UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_event"),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscription.id"],
            name="fk_webhook_delivery_subscription_id_webhook_subscription",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            _in("status", ("pending", "sent", "failed")), name="ck_webhook_delivery_status"
        ),
    )
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("webhook_delivery")
    op.drop_table("webhook_subscription")
    op.drop_table("job")
    with op.batch_alter_table("bank") as batch:
        batch.drop_column("quarantine_reason")
        batch.drop_column("quarantined_at")
        batch.drop_column("match_cap_per_minute")
    with op.batch_alter_table("api_key") as batch:
        batch.drop_index("ix_api_key_organisation_id")
        batch.drop_constraint("fk_api_key_organisation_id_organisation", type_="foreignkey")
        batch.drop_column("organisation_id")
    op.drop_table("user_session")
    op.drop_table("user_role")
    op.drop_table("user_account")
