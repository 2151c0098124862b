# Owns the tables of the organisation pages: each sighting's state as the organisation set it,
# and each user's visits.
"""ORM models of the organisation pages, written only by `childguard.protect.sighting_actions`.

- `OrgSightingState`: what the organisation made of one sighting of its photos: `new` (no row
  is the same), `seen`, `false-alarm` (with the reason and the allow entries it added) or
  `reported` (with the hotline report it filed); who set it and when.
- `OrgVisit`: when a user last looked at the organisation's pages, and the visit before, so a
  dashboard can say what is new since the last visit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from childguard.store.base import Base, BigId, JsonDict, UtcDateTime, utcnow

SIGHTING_STATES = ("new", "seen", "false-alarm", "reported")


class OrgSightingState(Base):
    """One organisation's state of one sighting of its photos."""

    __tablename__ = "org_sighting_state"
    __table_args__ = (
        UniqueConstraint("organisation_id", "sighting_id", name="uq_org_sighting_state"),
        CheckConstraint("state IN ('new', 'seen', 'false-alarm', 'reported')", name="state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    sighting_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sighting.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    actor: Mapped[str] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    hotline_report_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("report.id", ondelete="SET NULL"), default=None
    )
    # The allow entries a false alarm added: {"bank": name, "entries": [ids]}.
    allow: Mapped[dict[str, Any] | None] = mapped_column(JsonDict, default=None)


class OrgVisit(Base):
    """A user's visits to the organisation's pages: the current one and the one before."""

    __tablename__ = "org_visit"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    organisation_id: Mapped[int] = mapped_column(
        ForeignKey("organisation.id", ondelete="CASCADE"), index=True
    )
    visit_started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    previous_visit_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)
