# Owns the tables of what leaves the hotline: destinations, routes, referrals, notices, checks.
"""ORM models of the hotline's second half, from an assessment to the content's removal.

Writers, one per table:

- `childguard.hotline.destinations`: `hotline_destination` (police, partner hotlines, platforms;
  their country and channel) and `hotline_config` (the home country);
- `childguard.hotline.routing`: `item_route`, one per assessed item and URL, with its state
  `assessed -> referred / forwarded / (tos) -> notified -> removed -> verified` (or `closed`)
  and a timestamp for each step; every other module moves a route through its functions;
- `childguard.hotline.referrals`: `referral` (a bundle built for a destination, and its
  sending, acknowledgement and external reference) and `referral_route` (the routes a
  referral's bundle covers, written when it is built);
- `childguard.hotline.notices`: `notice` (a takedown notice to a host, CDN, registrar or
  platform, re-sent until removal), `notice_route` (the routes a notice covers, written when
  it is made) and `notice_send` (each sending, recorded before it goes out, so a crash never
  sends one twice);
- `childguard.hotline.host_links`: `notice_event` (what a host did through its link);
- `childguard.hotline.removal`: `removal_check` (each re-fetch of a URL and its result).
"""

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
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow

DESTINATION_KINDS = ("police", "hotline", "platform")
DESTINATION_CHANNELS = ("email", "webhook", "api", "download")
ROUTES = ("police", "hotline", "tos", "closed")
ROUTE_STATES = (
    "assessed",
    "referred",
    "forwarded",
    "notified",
    "removed",
    "verified",
    "closed",
)
REFERRAL_STATES = ("built", "sending", "sent", "uncertain", "acknowledged", "failed")
NOTICE_RECIPIENTS = ("host", "cdn", "registrar", "platform")
NOTICE_CHANNELS = ("email", "webhook")
NOTICE_STATES = ("draft", "open", "closed")
SEND_STATES = ("sending", "sent", "failed", "uncertain")
NOTICE_EVENTS = ("viewed", "claimed-removed", "comment")
CHECK_RESULTS = ("removed", "still-online", "changed", "error")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class HotlineDestination(Base):
    """Where a route leads: a police unit, a partner hotline, or a platform's terms-of-service
    team; its country (ISO 3166-1 alpha-2), channel and address, the VICS profile its bundles
    use, and optionally the public key evidence is encrypted to."""

    __tablename__ = "hotline_destination"
    __table_args__ = (
        CheckConstraint(_in("kind", DESTINATION_KINDS), name="kind"),
        CheckConstraint(_in("channel", DESTINATION_CHANNELS), name="channel"),
        Index("ix_hotline_destination_route", "kind", "country"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    channel: Mapped[str] = mapped_column(String(16))
    # An email address for `email`, an https URL for `webhook` and `api`; None for `download`.
    address: Mapped[str | None] = mapped_column(Text, default=None)
    vics_profile: Mapped[str | None] = mapped_column(String(16), default=None)
    # The recipient's age X25519 recipient ("age1..."); bundle evidence is encrypted to it.
    public_key: Mapped[str | None] = mapped_column(Text, default=None)
    # Platform destinations: the hosts (lower-case, a leading dot for subdomains) they cover.
    hosts: Mapped[list[str] | None] = mapped_column(JsonDict, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class HotlineConfig(Base):
    """One routing setting a supervisor edits (`home_country`, ...), as JSON."""

    __tablename__ = "hotline_config"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonDict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(200))


class Referral(Base):
    """A bundle built for one police unit or partner hotline, and what became of it."""

    __tablename__ = "referral"
    __table_args__ = (
        CheckConstraint(_in("state", REFERRAL_STATES), name="state"),
        CheckConstraint(_in("kind", ("police", "hotline")), name="kind"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    destination_id: Mapped[int] = mapped_column(
        ForeignKey("hotline_destination.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="built")
    # The zip under `<data dir>/bundles/`, its SHA-256, and the SHA-256 of its manifest.
    bundle_path: Mapped[str] = mapped_column(Text)
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    byte_size: Mapped[int] = mapped_column(Integer)
    with_media: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    channel: Mapped[str | None] = mapped_column(String(16), default=None)
    send_started_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    sent_by: Mapped[str | None] = mapped_column(String(200), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    external_ref: Mapped[str | None] = mapped_column(String(200), default=None)


class Notice(Base):
    """A notice-and-takedown request to whoever can remove the content, covering one or more
    routes (URLs) of one recipient, re-sent every interval until they are all removed. The
    host link's token is stored only as its SHA-256."""

    __tablename__ = "notice"
    __table_args__ = (
        CheckConstraint(_in("state", NOTICE_STATES), name="state"),
        CheckConstraint(_in("recipient_kind", NOTICE_RECIPIENTS), name="recipient_kind"),
        CheckConstraint(_in("channel", NOTICE_CHANNELS), name="channel"),
        Index("ix_notice_due", "state", "next_send_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_name: Mapped[str | None] = mapped_column(String(200), default=None)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    # DSA Art. 16(2)(c): the notifier's name and email may be left out for CSA offences.
    identity_withheld: Mapped[bool] = mapped_column(Boolean, default=True)
    preservation_request: Mapped[bool] = mapped_column(Boolean, default=True)
    state: Mapped[str] = mapped_column(String(16), default="draft")
    sends: Mapped[int] = mapped_column(Integer, default=0)
    first_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    next_send_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    token_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    confirmed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class NoticeSend(Base):
    """One sending of a notice (the first, then each re-notice). The row is written as
    `sending` before anything goes out and becomes `sent` or `failed` after; a `sending` row
    left by a crash becomes `uncertain` and is never sent again."""

    __tablename__ = "notice_send"
    __table_args__ = (
        CheckConstraint(_in("state", SEND_STATES), name="state"),
        UniqueConstraint("notice_id", "sequence", name="uq_notice_send_sequence"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="sending")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # The email's Message-ID or the webhook's status; the error when it failed.
    message_id: Mapped[str | None] = mapped_column(String(200), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class NoticeEvent(Base):
    """What a host did through its notice link: viewed it, said the content is removed, or
    commented. A claim of removal only brings the next removal check forward."""

    __tablename__ = "notice_event"
    __table_args__ = (CheckConstraint(_in("kind", NOTICE_EVENTS), name="kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ItemRoute(Base):
    """Where one assessed item at one URL goes: the route the rules proposed, the route taken
    (an analyst's override keeps its reason), the destination, and each step's time.
    `reported_at` is when the URL was first reported, the start of every time-to measure."""

    __tablename__ = "item_route"
    __table_args__ = (
        CheckConstraint(_in("route", ROUTES), name="route"),
        CheckConstraint(_in("proposed_route", ROUTES), name="proposed_route"),
        CheckConstraint(_in("state", ROUTE_STATES), name="state"),
        UniqueConstraint("item_id", "place_id", name="uq_item_route_place"),
        Index("ix_item_route_state", "state", "route"),
        Index("ix_item_route_check", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("item_place.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255), index=True)
    country: Mapped[str | None] = mapped_column(String(2), default=None, index=True)
    outcome: Mapped[str] = mapped_column(String(24))
    proposed_route: Mapped[str] = mapped_column(String(16))
    route: Mapped[str] = mapped_column(String(16))
    destination_id: Mapped[int | None] = mapped_column(
        ForeignKey("hotline_destination.id", ondelete="SET NULL"), default=None
    )
    # Why the rules chose this route (or why it was closed).
    reason: Mapped[str] = mapped_column(Text)
    override_reason: Mapped[str | None] = mapped_column(Text, default=None)
    overridden_by: Mapped[str | None] = mapped_column(String(200), default=None)
    overridden_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    state: Mapped[str] = mapped_column(String(16), default="assessed")
    confirmed_by: Mapped[str | None] = mapped_column(String(200), default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    assessed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    referred_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    forwarded_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    notified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    verified_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    referral_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral.id", ondelete="SET NULL"), default=None, index=True
    )
    notice_id: Mapped[int | None] = mapped_column(
        ForeignKey("notice.id", ondelete="SET NULL"), default=None, index=True
    )
    # Removal checks: the next one due, the last result; a host's claim brings it forward.
    next_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_check_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_check_result: Mapped[str | None] = mapped_column(String(16), default=None)
    # Harvested photos in a protected bank: when the organisation was alerted.
    organisation_alerted_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class ReferralRoute(Base):
    """One route a referral's bundle covers; `item_route.referral_id` is set only once the
    referral is sent, this from the moment it is built."""

    __tablename__ = "referral_route"

    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), primary_key=True
    )
    route_id: Mapped[int] = mapped_column(
        ForeignKey("item_route.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class NoticeRoute(Base):
    """One route (URL) a notice covers; `item_route.notice_id` names only a route's latest
    notice, this every notice made for it."""

    __tablename__ = "notice_route"

    notice_id: Mapped[int] = mapped_column(
        ForeignKey("notice.id", ondelete="CASCADE"), primary_key=True
    )
    route_id: Mapped[int] = mapped_column(
        ForeignKey("item_route.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class RemovalCheck(Base):
    """One re-fetch of a routed URL: `removed` (gone, or a different picture), `still-online`
    (the same bytes or picture), `changed` (a near copy, still the content) or `error`."""

    __tablename__ = "removal_check"
    __table_args__ = (CheckConstraint(_in("result", CHECK_RESULTS), name="result"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    route_id: Mapped[int] = mapped_column(
        ForeignKey("item_route.id", ondelete="CASCADE"), index=True
    )
    checked_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    result: Mapped[str] = mapped_column(String(16))
    http_status: Mapped[int | None] = mapped_column(Integer, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    pdq_distance: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str | None] = mapped_column(Text, default=None)
