"""ORM models of the crawler: watches, crawl runs, the image cache and sightings.

- `CrawlWatch`: a named watch; its configuration is `childguard.crawl.watch.Watch` as JSON.
- `CrawlRun`: one crawl of one watch, with its robots policy (an override is recorded) and stats.
- `CrawledImage`: per image URL, the validators (ETag, Last-Modified) for conditional requests
  and the sha256 of the last content seen there.
- `ContentHashes`: per sha256, the signals computed once, so the same bytes are never re-hashed.
- `Sighting`: an image URL on a page that matched a bank entry; first/last seen, times seen,
  status (`online`, `removed`, `changed`). Unique per (page, image, entry): re-crawls update it.
- `PageCounter`: a view counter / comment count reading of a page (and optionally one photo on
  it) per crawl run, read through a site profile; the series shows growth over time.
URLs are stored whole as text and indexed through their fixed-length `url_key`
(`childguard.store.url_keys`), so a URL of any length is kept on every database.
Image bytes are never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow
from childguard.store.url_keys import URL_KEY_LENGTH, key_default

SIGHTING_STATUSES = ("online", "removed", "changed")
RUN_STATUSES = ("running", "finished", "failed")


class CrawlWatch(Base):
    __tablename__ = "crawl_watch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    config: Mapped[dict[str, Any]] = mapped_column(JsonDict)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)
    last_run_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)


class CrawlRun(Base):
    __tablename__ = "crawl_run"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'finished', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    watch_id: Mapped[int | None] = mapped_column(
        ForeignKey("crawl_watch.id", ondelete="SET NULL"), default=None, index=True
    )
    watch_name: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    status: Mapped[str] = mapped_column(String(16), default="running")
    obey_robots: Mapped[bool] = mapped_column(default=True)
    robots_override_reason: Mapped[str | None] = mapped_column(Text, default=None)
    allow_private: Mapped[bool] = mapped_column(default=False)
    stats: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)


class CrawledImage(Base):
    __tablename__ = "crawled_image"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    url_key: Mapped[str] = mapped_column(
        String(URL_KEY_LENGTH), unique=True, default=key_default("url")
    )
    etag: Mapped[str | None] = mapped_column(String(500), default=None)
    last_modified: Mapped[str | None] = mapped_column(String(100), default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    first_fetched_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_checked_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ContentHashes(Base):
    __tablename__ = "content_hashes"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    md5: Mapped[str] = mapped_column(String(32))
    sha1: Mapped[str] = mapped_column(String(40))
    pdq: Mapped[str | None] = mapped_column(String(64), default=None)
    pdq_quality: Mapped[int | None] = mapped_column(Integer, default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    hashed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Robust query views and ORB features (childguard.crawl.hashing.extras_json).
    robust: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    # Every signal of the content, by type (ContentSignals.to_dict layout).
    signals: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)


class Sighting(Base):
    __tablename__ = "sighting"
    __table_args__ = (
        UniqueConstraint("page_key", "image_key", "match_key", name="uq_sighting_page_image_match"),
        CheckConstraint("status IN ('online', 'removed', 'changed')", name="status"),
        Index("ix_sighting_status_site", "status", "site"),
        Index("ix_sighting_watch", "watch_name", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    watch_name: Mapped[str | None] = mapped_column(String(100), default=None)
    site: Mapped[str] = mapped_column(String(300))
    page_url: Mapped[str] = mapped_column(Text)
    page_key: Mapped[str] = mapped_column(String(URL_KEY_LENGTH), default=key_default("page_url"))
    page_title: Mapped[str | None] = mapped_column(String(1000), default=None)
    image_url: Mapped[str] = mapped_column(Text)
    image_key: Mapped[str] = mapped_column(String(URL_KEY_LENGTH), default=key_default("image_url"))
    # The matched bank entry; provenance is copied so the sighting survives the entry's deletion.
    entry_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("bank_entry.id", ondelete="SET NULL"), default=None, index=True
    )
    match_key: Mapped[str] = mapped_column(String(300))  # "entry:<id>" or "<bank>:<signal>:<value>"
    bank: Mapped[str | None] = mapped_column(String(200), default=None)
    bank_kind: Mapped[str | None] = mapped_column(String(20), default=None)
    organisation: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    signal_type: Mapped[str] = mapped_column(String(32))
    distance: Mapped[int] = mapped_column(Integer)
    image_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    image_pdq: Mapped[str | None] = mapped_column(String(64), default=None)
    # The match as the matcher made it (`childguard.matcher.Match.to_dict`): variant, threshold,
    # classification and provenance of the entry, as the alerts and the hotline need them.
    match: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    times_seen: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="online")
    status_changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    first_run_id: Mapped[int | None] = mapped_column(BigId, default=None)
    last_run_id: Mapped[int | None] = mapped_column(BigId, default=None)


class PageCounter(Base):
    __tablename__ = "page_counter"
    __table_args__ = (
        UniqueConstraint("run_id", "page_key", "image_key", name="uq_page_counter_run_page_image"),
        Index("ix_page_counter_page", "page_key", "observed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigId, ForeignKey("crawl_run.id", ondelete="CASCADE"))
    page_url: Mapped[str] = mapped_column(Text)
    page_key: Mapped[str] = mapped_column(String(URL_KEY_LENGTH), default=key_default("page_url"))
    image_url: Mapped[str] = mapped_column(Text, default="")  # "" = the page itself
    image_key: Mapped[str] = mapped_column(String(URL_KEY_LENGTH), default=key_default("image_url"))
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    views: Mapped[int | None] = mapped_column(Integer, default=None)
    comments: Mapped[int | None] = mapped_column(Integer, default=None)
