# Owns the account tables: API keys (hashed, with a role, expiry, revocation and last use).
"""ORM models of accounts. Only `childguard.accounts.keys` writes them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, UtcDateTime, utcnow

# Every role a key or user can hold. Each route of the service is owned by exactly one.
ROLES = ("hash", "match", "curate", "reporter", "analyst", "supervisor", "org-admin", "admin")
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
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(200), default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, prefix={self.prefix!r}, role={self.role!r})"
