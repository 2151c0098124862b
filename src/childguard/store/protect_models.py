"""ORM models of the protect story: organisations, their protected photos (signatures and
metadata only, never image bytes), view-count observations of their own albums, and alerts.
URLs are text of any length; the view observations index them through `url_key`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
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
from childguard.store.models import Bank
from childguard.store.url_keys import URL_KEY_LENGTH, key_default

ALERT_MODES = ("immediate", "daily")
ALERT_KINDS = ("sighting", "view-spike", "album-surge")
ALERT_STATUSES = ("pending", "sent", "failed")


class Organisation(Base):
    """An organisation that publishes photos: its contacts and its `protected` bank."""

    __tablename__ = "organisation"
    __table_args__ = (CheckConstraint("alert_mode IN ('immediate', 'daily')", name="alert_mode"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    emails: Mapped[list[str]] = mapped_column(JsonDict, default=list)
    webhook_url: Mapped[str | None] = mapped_column(Text, default=None)
    webhook_secret: Mapped[str | None] = mapped_column(String(200), default=None)
    alert_mode: Mapped[str] = mapped_column(String(16), default="immediate")
    bank_id: Mapped[int] = mapped_column(ForeignKey("bank.id", ondelete="RESTRICT"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_digest_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    bank: Mapped[Bank] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"Organisation(id={self.id!r}, name={self.name!r})"


class ProtectedPhoto(Base):
    """One registered photo: where it was published and its signatures. No pixels, no bytes."""

    __tablename__ = "protected_photo"
    __table_args__ = (
        UniqueConstraint("organisation_id", "sha256", name="uq_protected_photo_sha256"),
        Index("ix_protected_photo_warning", "organisation_id", "warning"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(500))
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    published_url: Mapped[str | None] = mapped_column(Text, default=None)
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    registered_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    byte_size: Mapped[int] = mapped_column(Integer)
    md5: Mapped[str] = mapped_column(String(32))
    sha1: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    # PDQ of a photo; None for a video (its vPDQ is one of its bank entries).
    pdq: Mapped[str | None] = mapped_column(String(64), default=None)
    pdq_quality: Mapped[int | None] = mapped_column(Integer, default=None)
    # Extra signatures (robust region hashes, descriptor summaries), as plain JSON.
    signatures: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    # Why copies may go unnoticed (`protect.register.warning_code`), kept with the signature
    # so that pages count and filter on it; None for a photo the matcher can find.
    warning: Mapped[str | None] = mapped_column(String(16), default=None)

    organisation: Mapped[Organisation] = relationship(lazy="joined")

    def __repr__(self) -> str:
        return f"ProtectedPhoto(id={self.id!r}, file_name={self.file_name!r})"


class ProtectedSignal(Base):
    """Links a protected photo to each bank entry registered for it (many-to-many: two near
    copies in one album can share one PDQ entry)."""

    __tablename__ = "protected_signal"

    photo_id: Mapped[int] = mapped_column(
        ForeignKey("protected_photo.id", ondelete="CASCADE"), primary_key=True
    )
    bank_entry_id: Mapped[int] = mapped_column(
        ForeignKey("bank_entry.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(32))  # "pdq", "sha256", "md5", "region-pdq", ...


class ViewObservation(Base):
    """One reading of one photo's view counter on the organisation's own album page."""

    __tablename__ = "view_observation"
    __table_args__ = (
        UniqueConstraint(
            "organisation_id", "photo_url_key", "observed_at", name="uq_view_observation"
        ),
        Index("ix_view_observation_album", "organisation_id", "album_url_key", "observed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    album: Mapped[str] = mapped_column(Text)  # the album page's URL
    album_url_key: Mapped[str] = mapped_column(String(URL_KEY_LENGTH), default=key_default("album"))
    photo_key: Mapped[str] = mapped_column(Text)  # the photo's image URL
    photo_url_key: Mapped[str] = mapped_column(
        String(URL_KEY_LENGTH), default=key_default("photo_key")
    )
    protected_photo_id: Mapped[int | None] = mapped_column(
        ForeignKey("protected_photo.id", ondelete="SET NULL"), default=None
    )
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime())
    views: Mapped[int] = mapped_column(Integer)


class Alert(Base):
    """One alert to one organisation. `dedupe_key` makes it idempotent: a re-check of the same
    sighting (key `sighting:<id>`) never makes a second alert. Holds URLs and the match, never
    image bytes."""

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("organisation_id", "dedupe_key", name="uq_alert_dedupe"),
        CheckConstraint("kind IN ('sighting', 'view-spike', 'album-surge')", name="kind"),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status"),
        Index("ix_alert_status", "status", "organisation_id"),
        Index("ix_alert_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    dedupe_key: Mapped[str] = mapped_column(String(300))
    sighting_id: Mapped[int | None] = mapped_column(BigId, default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    webhook_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # When a delivery that failed is tried again (None: never failed, or no more tries).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    organisation: Mapped[Organisation] = relationship(lazy="joined")
