# Owns the bank_signature model: the protected-style signature held with one bank entry.
"""ORM model of `bank_signature`: a protected-style signature (`childguard.robust.signature`:
PDQ hashes of the registered views, ORB keypoints and descriptors, as its JSON form) held with
one bank entry of a known-abuse bank whose media was assessed where it was held (the hotline's
own items). Outside lists carry no signatures: their entries stay hash-only. Written only by
`childguard.hotline.signatures`; read by the matcher, which verifies queries against them as it
verifies protected photos. Hashes and descriptors only, never pixels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow


class BankSignature(Base):
    """The signature of the media behind one bank entry (the entry's PDQ is its `full` view)."""

    __tablename__ = "bank_signature"

    bank_entry_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("bank_entry.id", ondelete="CASCADE"), primary_key=True
    )
    # `ProtectedSignature.to_json()`, parsed.
    signature: Mapped[dict[str, Any]] = mapped_column(JsonDict)
    # What the media was: `item:<id>` for a hotline item.
    subject: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
