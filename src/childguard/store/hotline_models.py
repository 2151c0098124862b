# Owns the hotline tables: reports and their URLs, items and where they were seen, assessments.
"""ORM models of the hotline. `childguard.hotline.reports` writes `report` and `report_url`;
`childguard.hotline.items` writes `item` and `item_place`; `childguard.hotline.assessments`
writes `assessment` and `assessment_label`; `childguard.hotline.review` writes the review
locks and exposure of `item` and `analyst_exposure`.

A report is saved whole before anything is fetched. Each of its URLs moves
`received -> fetched -> traced -> in-review -> assessed` (or `fetch-failed`, retried on a
schedule). What a URL brings in becomes an item, one per piece of media across every report
and crawl: exact by SHA-256, near by PDQ or vPDQ. Reporters' addresses and user agents are
never stored; a feedback email is stored only encrypted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow
from childguard.store.url_keys import URL_KEY_LENGTH, key_default

REPORT_CHANNELS = ("web", "api")
URL_STATES = ("received", "fetched", "traced", "in-review", "assessed", "fetch-failed")
ITEM_STATES = ("new", "in-review", "assessed", "inherited")
ASSESSMENT_KINDS = ("vote", "final", "inherited", "supervisor")
OUTCOMES = ("baseline", "nationally-illegal", "not-illegal", "harvested", "undetermined")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Report(Base):
    """What someone reported: one or more URLs, an optional description and hints. The
    tracking code given to the reporter is stored only as its SHA-256."""

    __tablename__ = "report"
    __table_args__ = (CheckConstraint(_in("channel", REPORT_CHANNELS), name="channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tracking_hash: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(8))
    # The API key or user that filed it (trusted flaggers, partner hotlines); None: anonymous.
    reporter: Mapped[str | None] = mapped_column(String(200), default=None)
    language: Mapped[str | None] = mapped_column(String(8), default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    # The reporter's hints: site type, content type, ... as the form or the API gave them.
    hints: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    # AES-GCM nonce + ciphertext of the feedback email, under the hotline's key.
    email_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)

    def __repr__(self) -> str:
        return f"Report(id={self.id!r}, channel={self.channel!r})"


class ReportUrl(Base):
    """One URL of a report and how far its processing got."""

    __tablename__ = "report_url"
    __table_args__ = (
        CheckConstraint(_in("state", URL_STATES), name="state"),
        UniqueConstraint("report_id", "url_key", name="uq_report_url_report_url"),
        Index("ix_report_url_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(URL_KEY_LENGTH), default=key_default("url"))
    state: Mapped[str] = mapped_column(String(16), default="received")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    final_url: Mapped[str | None] = mapped_column(Text, default=None)
    content_type: Mapped[str | None] = mapped_column(String(200), default=None)
    fetched_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # The host trace: addresses, reverse DNS, ASN, country, abuse contact, CDN hint.
    trace: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    traced_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    state_changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Item(Base):
    """One piece of media, identified by its signals, deduplicated across every report and
    crawl. `signals` is its `ContentSignals.to_dict()`; `matches` its known-bank matches
    (`Match.to_dict()`), with provenance and classification."""

    __tablename__ = "item"
    __table_args__ = (
        CheckConstraint(_in("state", ITEM_STATES), name="state"),
        Index("ix_item_queue", "state", "priority", "first_seen"),
        Index("ix_item_pdq", "pdq"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    md5: Mapped[str | None] = mapped_column(String(32), default=None)
    pdq: Mapped[str | None] = mapped_column(String(64), default=None)
    content_type: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str | None] = mapped_column(String(100), default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    byte_size: Mapped[int] = mapped_column(Integer)
    signals: Mapped[dict[str, Any]] = mapped_column(JsonDict)
    matches: Mapped[list[dict[str, Any]] | None] = mapped_column(JsonDict, default=None)
    # The item this one is a near duplicate of (PDQ or vPDQ within the hotline's threshold).
    duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("item.id", ondelete="SET NULL"), default=None, index=True
    )
    state: Mapped[str] = mapped_column(String(16), default="new")
    # Lower is reviewed sooner: 0 for a known-abuse match, 100 otherwise.
    priority: Mapped[int] = mapped_column(Integer, default=100)
    outcome: Mapped[str | None] = mapped_column(String(24), default=None)
    assessed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    # The review lock: one analyst at a time, until it expires.
    locked_by: Mapped[int | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL"), default=None
    )
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    # Evidence kept encrypted at rest (a file under the evidence dir), and its retention.
    evidence_path: Mapped[str | None] = mapped_column(Text, default=None)
    evidence_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    evidence_purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    def __repr__(self) -> str:
        return f"Item(id={self.id!r}, state={self.state!r})"


class ItemPlace(Base):
    """Where an item was seen: the media URL, the page it was on, and the report (or crawl)
    that brought it in, with first and last seen."""

    __tablename__ = "item_place"
    __table_args__ = (
        UniqueConstraint("item_id", "report_url_id", "url_key", name="uq_item_place_seen"),
        Index("ix_item_place_report", "report_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int | None] = mapped_column(
        ForeignKey("report.id", ondelete="SET NULL"), default=None
    )
    report_url_id: Mapped[int | None] = mapped_column(
        ForeignKey("report_url.id", ondelete="SET NULL"), default=None
    )
    source: Mapped[str] = mapped_column(String(16), default="report")  # "report" or "crawl"
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(String(URL_KEY_LENGTH), default=key_default("url"))
    page_url: Mapped[str | None] = mapped_column(Text, default=None)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Assessment(Base):
    """One analyst's classification of an item: the facts recorded once, the outcome, and
    the labels derived from them (`AssessmentLabel`). `kind` is a `vote`, the `final`
    assessment once enough votes agree, a `supervisor` decision of a disagreement, or
    `inherited` from an earlier item with the same signals."""

    __tablename__ = "assessment"
    __table_args__ = (
        CheckConstraint(_in("kind", ASSESSMENT_KINDS), name="kind"),
        CheckConstraint(_in("outcome", OUTCOMES), name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    analyst: Mapped[str] = mapped_column(String(200))
    facts: Mapped[dict[str, Any]] = mapped_column(JsonDict)
    outcome: Mapped[str] = mapped_column(String(24))
    note: Mapped[str | None] = mapped_column(Text, default=None)
    inherited_from: Mapped[int | None] = mapped_column(
        ForeignKey("assessment.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class AssessmentLabel(Base):
    """One label an assessment derives in one scheme: never a bare number, always
    (scheme, profile, version, label)."""

    __tablename__ = "assessment_label"

    assessment_id: Mapped[int] = mapped_column(
        ForeignKey("assessment.id", ondelete="CASCADE"), primary_key=True
    )
    scheme: Mapped[str] = mapped_column(String(32), primary_key=True)
    profile: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(64))


class AnalystExposure(Base):
    """Seconds of content an analyst had on screen on one day (UTC), for the daily cap."""

    __tablename__ = "analyst_exposure"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # YYYY-MM-DD
    seconds: Mapped[int] = mapped_column(Integer, default=0)
    reveals: Mapped[int] = mapped_column(Integer, default=0)
