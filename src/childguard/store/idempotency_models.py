# Owns the idempotency table: the first answer of each (caller, Idempotency-Key) pair.
"""ORM model of idempotency keys. Only the service's `/v1` routes read and write it
(`childguard.service.api.v1`): a write sent again with the same `Idempotency-Key` by the same
caller answers the first result instead of writing again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow


class IdempotencyKey(Base):
    """One key a caller sent: a digest of the request it came with, and the answer given
    (`status` None while the first request is still being handled)."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_key_scope"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # Whose key it is: the caller (an API key's actor name); keys of different callers never meet.
    scope: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 (hex) of the method, path and body of the first request.
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, default=None)
    response: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"IdempotencyKey(id={self.id!r}, scope={self.scope!r}, key={self.key!r})"
