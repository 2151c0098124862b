"""What leaves the hotline: destinations and the home country, routes of assessed items,
referral bundles, notices and their sendings, the routes each referral and notice covers,
hosts' use of their links, removal checks.

Revision ID: 0011_referrals
Revises: 0010_hotline
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_referrals"
down_revision: str | None = "0010_hotline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hotline_config",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_hotline_config")),
    )
    op.create_table(
        "hotline_destination",
        sa.Column("id", _ID, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=True),
        sa.Column("vics_profile", sa.String(length=16), nullable=True),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("hosts", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "channel IN ('email', 'webhook', 'api', 'download')",
            name=op.f("ck_hotline_destination_channel"),
        ),
        sa.CheckConstraint(
            "kind IN ('police', 'hotline', 'platform')", name=op.f("ck_hotline_destination_kind")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hotline_destination")),
        sa.UniqueConstraint("name", name=op.f("uq_hotline_destination_name")),
    )
    op.create_index(
        "ix_hotline_destination_route", "hotline_destination", ["kind", "country"], unique=False
    )
    op.create_table(
        "notice",
        sa.Column("id", _ID, nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("recipient_kind", sa.String(length=16), nullable=False),
        sa.Column("recipient_name", sa.String(length=200), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("identity_withheld", sa.Boolean(), nullable=False),
        sa.Column("preservation_request", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("first_sent_at", _TS, nullable=True),
        sa.Column("last_sent_at", _TS, nullable=True),
        sa.Column("next_send_at", _TS, nullable=True),
        sa.Column("escalated_at", _TS, nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("token_expires_at", _TS, nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("confirmed_by", sa.String(length=200), nullable=True),
        sa.Column("confirmed_at", _TS, nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.CheckConstraint("channel IN ('email', 'webhook')", name=op.f("ck_notice_channel")),
        sa.CheckConstraint(
            "recipient_kind IN ('host', 'cdn', 'registrar', 'platform')",
            name=op.f("ck_notice_recipient_kind"),
        ),
        sa.CheckConstraint("state IN ('draft', 'open', 'closed')", name=op.f("ck_notice_state")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice")),
        sa.UniqueConstraint("reference", name=op.f("uq_notice_reference")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_notice_token_hash")),
    )
    op.create_index("ix_notice_due", "notice", ["state", "next_send_at"], unique=False)
    op.create_table(
        "notice_event",
        sa.Column("id", _ID, nullable=False),
        sa.Column("notice_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", _TS, nullable=False),
        sa.CheckConstraint(
            "kind IN ('viewed', 'claimed-removed', 'comment')", name=op.f("ck_notice_event_kind")
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notice.id"],
            name=op.f("fk_notice_event_notice_id_notice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_event")),
    )
    op.create_index(op.f("ix_notice_event_notice_id"), "notice_event", ["notice_id"], unique=False)
    op.create_table(
        "notice_send",
        sa.Column("id", _ID, nullable=False),
        sa.Column("notice_id", _ID, nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("message_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('sending', 'sent', 'failed', 'uncertain')", name=op.f("ck_notice_send_state")
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notice.id"],
            name=op.f("fk_notice_send_notice_id_notice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_send")),
        sa.UniqueConstraint("notice_id", "sequence", name="uq_notice_send_sequence"),
    )
    op.create_table(
        "referral",
        sa.Column("id", _ID, nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("destination_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("bundle_path", sa.Text(), nullable=False),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("byte_size", sa.Integer(), nullable=False),
        sa.Column("with_media", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=True),
        sa.Column("send_started_at", _TS, nullable=True),
        sa.Column("sent_at", _TS, nullable=True),
        sa.Column("sent_by", sa.String(length=200), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("acknowledged_at", _TS, nullable=True),
        sa.Column("external_ref", sa.String(length=200), nullable=True),
        sa.CheckConstraint("kind IN ('police', 'hotline')", name=op.f("ck_referral_kind")),
        sa.CheckConstraint(
            "state IN ('built', 'sending', 'sent', 'uncertain', 'acknowledged', 'failed')",
            name=op.f("ck_referral_state"),
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["hotline_destination.id"],
            name=op.f("fk_referral_destination_id_hotline_destination"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
        sa.UniqueConstraint("reference", name=op.f("uq_referral_reference")),
    )
    op.create_index(
        op.f("ix_referral_destination_id"), "referral", ["destination_id"], unique=False
    )
    op.create_table(
        "item_route",
        sa.Column("id", _ID, nullable=False),
        sa.Column("item_id", _ID, nullable=False),
        sa.Column("place_id", _ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("proposed_route", sa.String(length=16), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("destination_id", _ID, nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("overridden_by", sa.String(length=200), nullable=True),
        sa.Column("overridden_at", _TS, nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("confirmed_by", sa.String(length=200), nullable=True),
        sa.Column("confirmed_at", _TS, nullable=True),
        sa.Column("reported_at", _TS, nullable=False),
        sa.Column("assessed_at", _TS, nullable=False),
        sa.Column("referred_at", _TS, nullable=True),
        sa.Column("forwarded_at", _TS, nullable=True),
        sa.Column("notified_at", _TS, nullable=True),
        sa.Column("removed_at", _TS, nullable=True),
        sa.Column("verified_at", _TS, nullable=True),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("referral_id", _ID, nullable=True),
        sa.Column("notice_id", _ID, nullable=True),
        sa.Column("next_check_at", _TS, nullable=True),
        sa.Column("last_check_at", _TS, nullable=True),
        sa.Column("last_check_result", sa.String(length=16), nullable=True),
        sa.Column("organisation_alerted_at", _TS, nullable=True),
        sa.CheckConstraint(
            "proposed_route IN ('police', 'hotline', 'tos', 'closed')",
            name=op.f("ck_item_route_proposed_route"),
        ),
        sa.CheckConstraint(
            "route IN ('police', 'hotline', 'tos', 'closed')", name=op.f("ck_item_route_route")
        ),
        sa.CheckConstraint(
            "state IN ('assessed', 'referred', 'forwarded', 'notified', 'removed', 'verified',"
            " 'closed')",
            name=op.f("ck_item_route_state"),
        ),
        sa.ForeignKeyConstraint(
            ["destination_id"],
            ["hotline_destination.id"],
            name=op.f("fk_item_route_destination_id_hotline_destination"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["item.id"], name=op.f("fk_item_route_item_id_item"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notice.id"],
            name=op.f("fk_item_route_notice_id_notice"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["place_id"],
            ["item_place.id"],
            name=op.f("fk_item_route_place_id_item_place"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
            name=op.f("fk_item_route_referral_id_referral"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_route")),
        sa.UniqueConstraint("item_id", "place_id", name="uq_item_route_place"),
    )
    op.create_index("ix_item_route_check", "item_route", ["next_check_at"], unique=False)
    op.create_index(op.f("ix_item_route_country"), "item_route", ["country"], unique=False)
    op.create_index(op.f("ix_item_route_host"), "item_route", ["host"], unique=False)
    op.create_index(op.f("ix_item_route_item_id"), "item_route", ["item_id"], unique=False)
    op.create_index(op.f("ix_item_route_notice_id"), "item_route", ["notice_id"], unique=False)
    op.create_index(op.f("ix_item_route_referral_id"), "item_route", ["referral_id"], unique=False)
    op.create_index("ix_item_route_state", "item_route", ["state", "route"], unique=False)
    op.create_table(
        "referral_route",
        sa.Column("referral_id", _ID, nullable=False),
        sa.Column("route_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referral.id"],
            name=op.f("fk_referral_route_referral_id_referral"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["item_route.id"],
            name=op.f("fk_referral_route_route_id_item_route"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("referral_id", "route_id", name=op.f("pk_referral_route")),
    )
    op.create_index(
        op.f("ix_referral_route_route_id"), "referral_route", ["route_id"], unique=False
    )
    op.create_table(
        "notice_route",
        sa.Column("notice_id", _ID, nullable=False),
        sa.Column("route_id", _ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["notice.id"],
            name=op.f("fk_notice_route_notice_id_notice"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["item_route.id"],
            name=op.f("fk_notice_route_route_id_item_route"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("notice_id", "route_id", name=op.f("pk_notice_route")),
    )
    op.create_index(op.f("ix_notice_route_route_id"), "notice_route", ["route_id"], unique=False)
    op.create_table(
        "removal_check",
        sa.Column("id", _ID, nullable=False),
        sa.Column("route_id", _ID, nullable=False),
        sa.Column("checked_at", _TS, nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("pdq_distance", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "result IN ('removed', 'still-online', 'changed', 'error')",
            name=op.f("ck_removal_check_result"),
        ),
        sa.ForeignKeyConstraint(
            ["route_id"],
            ["item_route.id"],
            name=op.f("fk_removal_check_route_id_item_route"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_removal_check")),
    )
    op.create_index(op.f("ix_removal_check_route_id"), "removal_check", ["route_id"], unique=False)


def downgrade() -> None:
    op.drop_table("removal_check")
    op.drop_table("notice_route")
    op.drop_table("referral_route")
    op.drop_table("item_route")
    op.drop_table("referral")
    op.drop_table("notice_send")
    op.drop_table("notice_event")
    op.drop_table("notice")
    op.drop_table("hotline_destination")
    op.drop_table("hotline_config")
