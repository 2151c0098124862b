"""What matching returns: `Match` (one query signal near one bank entry) and `MatchOutcome`
(all matches of one piece of content, plus what an allow bank suppressed). One `Match` is
carried unchanged to every action: sightings, alerts, scan reports, API responses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from childguard.banks import EntryView


@dataclass(frozen=True)
class Match:
    """One signal of some content within the threshold of one bank entry."""

    signal_type: str
    distance: int
    query_value: str
    variant: str  # which query view matched: "original", "rot90", "trimmed", "region0", ...
    entry_id: int
    bank_id: int
    bank_name: str
    bank_kind: str
    threshold: Any  # the bank's threshold for this signal type, in the type's form
    value: str
    source: str | None
    organisation: str | None
    imported_at: datetime | None
    original_id: str | None
    classification_scheme: str | None
    classification_label: str | None
    metadata: dict[str, Any] | None
    # What the comparison measured beyond the distance (vPDQ: the share of frames matched).
    detail: Mapping[str, float] | None = None

    @classmethod
    def of(
        cls,
        entry: EntryView,
        *,
        distance: int,
        query_value: str,
        variant: str,
        threshold: Any,
        detail: Mapping[str, float] | None = None,
    ) -> Match:
        return cls(
            signal_type=entry.signal_type,
            distance=distance,
            query_value=query_value,
            variant=variant,
            entry_id=entry.id,
            bank_id=entry.bank_id,
            bank_name=entry.bank_name,
            bank_kind=entry.bank_kind,
            threshold=threshold,
            value=entry.value,
            source=entry.source,
            organisation=entry.organisation,
            imported_at=entry.imported_at,
            original_id=entry.original_id,
            classification_scheme=entry.classification_scheme,
            classification_label=entry.classification_label,
            metadata=entry.metadata,
            detail=dict(detail) if detail is not None else None,
        )

    @property
    def bank(self) -> str:
        return self.bank_name

    @property
    def key(self) -> str:
        """Identity of the matched entry, stable across runs (sightings are keyed by it)."""
        return f"entry:{self.entry_id}"

    @property
    def classification(self) -> str | None:
        if self.classification_label is None:
            return None
        return f"{self.classification_scheme or 'label'}:{self.classification_label}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["imported_at"] = self.imported_at.isoformat() if self.imported_at else None
        return data


@dataclass
class MatchOutcome:
    """Every match of one piece of content.

    `suppressed` holds matches that an `allow` bank silenced (the content is a known false
    positive); `skipped` says why a near signal was not searched (quality too low)."""

    matches: list[Match] = field(default_factory=list)
    suppressed: list[Match] = field(default_factory=list)
    allowed_by: list[Match] = field(default_factory=list)
    skipped: str | None = None

    @property
    def matched(self) -> bool:
        return bool(self.matches)
