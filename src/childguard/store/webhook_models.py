# Owns the webhook tables: subscriptions to match events and each delivery's state.
"""ORM models of webhook subscriptions. Only `childguard.alerts.subscriptions` writes them.

A subscription's signing secret is not stored: it is derived from the service's secret key
and the subscription's id, so the store holds nothing that could sign a forged event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow

DELIVERY_STATES = ("pending", "sent", "failed")
_STATE_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in DELIVERY_STATES) + ")"


class WebhookSubscription(Base):
    """Where to POST which events: `events` (e.g. ["match"]), optionally only for `banks`."""

    __tablename__ = "webhook_subscription"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JsonDict, default=list)
    banks: Mapped[list[str] | None] = mapped_column(JsonDict, default=None)
    description: Mapped[str] = mapped_column(String(500), default="")
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), default=None, index=True
    )
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    def __repr__(self) -> str:
        return f"WebhookSubscription(id={self.id!r}, url={self.url!r})"


class WebhookDelivery(Base):
    """One event for one subscription, retried on a schedule until sent or given up."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (
        CheckConstraint(_STATE_CHECK, name="status"),
        UniqueConstraint("subscription_id", "event_id", name="uq_webhook_delivery_event"),
        Index("ix_webhook_delivery_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscription.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
