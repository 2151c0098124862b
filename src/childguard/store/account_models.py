# Owns the account tables: API keys, users, their roles and their browser sessions.
"""ORM models of accounts. `childguard.accounts.keys` writes `api_key`;
`childguard.accounts.users` writes `user_account` and `user_role`;
`childguard.accounts.sessions` writes `user_session`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow
from childguard.vocabulary import ROLES

_ROLE_CHECK = "role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")"


class ApiKey(Base):
    """One API key. The key itself is never stored: `key_hash` is its SHA-256 (hex) and
    `prefix` its first characters, to tell keys apart in listings."""

    __tablename__ = "api_key"
    __table_args__ = (CheckConstraint(_ROLE_CHECK, name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    # A key of an organisation acts for it alone (its sightings, its protected photos).
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), default=None, index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(200), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, prefix={self.prefix!r}, role={self.role!r})"


class User(Base):
    """A person who signs in to the web pages. `password_hash` is an argon2 hash; the
    password itself is never stored. A user of an organisation (`organisation_id`) sees only
    that organisation's protected photos, sightings and alerts."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    password_hash: Mapped[str] = mapped_column(String(255))
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisation.id", ondelete="SET NULL"), default=None, index=True
    )
    # Per-user choices the pages keep (for example the preview blur level).
    preferences: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    def __repr__(self) -> str:
        return f"User(id={self.id!r}, username={self.username!r})"


class UserRole(Base):
    """One role a user holds; a user may hold several."""

    __tablename__ = "user_role"
    __table_args__ = (CheckConstraint(_ROLE_CHECK, name="role"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    granted_by: Mapped[str] = mapped_column(String(200))


class UserSession(Base):
    """A signed-in browser. The cookie holds the session token; the store keeps its SHA-256
    (`token_hash`) and the SHA-256 of the session's CSRF token (`csrf_hash`)."""

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_hash: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
