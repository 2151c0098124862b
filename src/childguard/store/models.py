"""ORM models of the hash banks: Bank, BankEntry and the AuditEvent log of every change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow
from childguard.vocabulary import BANK_KINDS as BANK_KINDS
from childguard.vocabulary import DEFAULT_PDQ_THRESHOLD


class Bank(Base):
    """A named list of signals with one kind, one owner and its own PDQ threshold."""

    __tablename__ = "bank"
    __table_args__ = (
        CheckConstraint("kind IN ('known-abuse', 'protected', 'allow')", name="kind"),
        CheckConstraint("pdq_threshold >= 0 AND pdq_threshold <= 256", name="pdq_threshold"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(200), default="")
    pdq_threshold: Mapped[int] = mapped_column(Integer, default=DEFAULT_PDQ_THRESHOLD)
    # Thresholds of other near signal types, by type name, in each type's stored form
    # (`SignalType.parse_threshold`); a type not named here uses its default.
    thresholds: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Flood control: at most this many matches a minute (None: the service's default), past
    # which the bank is quarantined (it stops matching) until a curator releases it.
    match_cap_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    quarantined_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    quarantine_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)

    entries: Mapped[list[BankEntry]] = relationship(
        back_populates="bank", cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )

    def __repr__(self) -> str:
        return f"Bank(id={self.id!r}, name={self.name!r}, kind={self.kind!r})"


class BankEntry(Base):
    """One signal in one bank, with its provenance, classification and free metadata."""

    __tablename__ = "bank_entry"
    __table_args__ = (
        UniqueConstraint("bank_id", "signal_type", "value", name="uq_bank_entry_value"),
        Index("ix_bank_entry_lookup", "signal_type", "value"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="CASCADE"))
    signal_type: Mapped[str] = mapped_column(String(32))
    # The signal's store key (`SignalType.store_key`): the value itself, or a digest of a long
    # value, which is then kept whole in `payload`.
    value: Mapped[str] = mapped_column(String(256))
    payload: Mapped[str | None] = mapped_column(Text, default=None)
    # Provenance: the list it came from, the organisation that supplied it, when, and its id there.
    source: Mapped[str | None] = mapped_column(String(500), default=None)
    organisation: Mapped[str | None] = mapped_column(String(200), default=None)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    original_id: Mapped[str | None] = mapped_column(String(200), default=None)
    # Classification under a scheme, e.g. scheme "vics-US" label "1", or "uk" / "A".
    classification_scheme: Mapped[str | None] = mapped_column(String(64), default=None)
    classification_label: Mapped[str | None] = mapped_column(String(64), default=None)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonDict, default=None)

    bank: Mapped[Bank] = relationship(back_populates="entries", lazy="raise")

    def __repr__(self) -> str:
        return (
            f"BankEntry(id={self.id!r}, bank_id={self.bank_id!r}, {self.signal_type}:{self.value})"
        )


class AuditEvent(Base):
    """Who did what to which object, and when. Append-only."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(200))
    details: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)

    def __repr__(self) -> str:
        target = f"{self.object_type}:{self.object_id}"
        return f"AuditEvent({self.at:%Y-%m-%dT%H:%M:%S} {self.actor} {self.action} {target})"
