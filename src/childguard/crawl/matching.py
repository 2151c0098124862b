"""How the crawler asks for matches: any callable `match(ImageHashes) -> list[CrawlMatch-like]`.

The store's matcher (`childguard.matcher.Matcher`) or a test's function both fit:
`as_crawl_match` reads the usual attribute names off whatever a matcher returns
(entry id, distance, signal type, bank, bank kind, organisation), so the crawler
does not depend on one matcher's result class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from childguard.crawl.hashing import ImageHashes
from childguard.signals.pdq import hamming_many, hexes_to_array
from childguard.store.db import Store


@dataclass(frozen=True)
class CrawlMatch:
    """One bank entry an image matched."""

    signal_type: str
    distance: int
    entry_id: int | None = None
    bank: str | None = None
    bank_kind: str | None = None
    organisation: str | None = None
    value: str | None = None

    @property
    def key(self) -> str:
        """Identity of the matched entry, stable across crawls."""
        if self.entry_id is not None:
            return f"entry:{self.entry_id}"
        return f"{self.bank or '-'}:{self.signal_type}:{self.value or '-'}"


MatchFn = Callable[[ImageHashes], Sequence[Any]]


def _first(obj: Any, *names: str) -> Any:
    for name in names:
        if isinstance(obj, dict) and name in obj:
            return obj[name]
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def as_crawl_match(obj: Any) -> CrawlMatch:
    """Normalise one matcher result (dataclass, object or dict) to a CrawlMatch."""
    if isinstance(obj, CrawlMatch):
        return obj
    entry = _first(obj, "entry")
    entry_id = _first(obj, "entry_id") or (_first(entry, "id") if entry is not None else None)
    bank = _first(obj, "bank_name", "bank")
    if bank is not None and not isinstance(bank, str):
        bank = _first(bank, "name")
    distance = _first(obj, "distance")
    return CrawlMatch(
        signal_type=str(_first(obj, "signal_type", "signal") or "pdq"),
        distance=int(distance) if distance is not None else 0,
        entry_id=int(entry_id) if entry_id is not None else None,
        bank=bank,
        bank_kind=_first(obj, "bank_kind", "kind"),
        organisation=_first(obj, "organisation", "owner")
        or (_first(entry, "organisation") if entry is not None else None),
        value=_first(obj, "value", "entry_value"),
    )


def no_matches(_: ImageHashes) -> list[CrawlMatch]:
    """A matcher that never matches (crawl to fill the cache, or to benchmark)."""
    return []


class BankMatcher:
    """Matches against every enabled bank in the store (PDQ within each bank's threshold,
    exact hashes by equality). Loaded once; used by the CLI when no other matcher is given.
    `childguard.matcher.Matcher` replaces it once the shared matcher offers the same call."""

    def __init__(self, store: Store) -> None:
        from childguard.store.models import Bank, BankEntry

        self._pdq_meta: list[tuple[int, str, str, str | None, int, str]] = []
        pdq_values: list[str] = []
        self._exact: dict[tuple[str, str], list[tuple[int, str, str, str | None]]] = {}
        with store.session() as s:
            rows = s.execute(
                select(
                    BankEntry.id,
                    BankEntry.signal_type,
                    BankEntry.value,
                    BankEntry.organisation,
                    Bank.name,
                    Bank.kind,
                    Bank.owner,
                    Bank.pdq_threshold,
                )
                .join(Bank, Bank.id == BankEntry.bank_id)
                .where(Bank.enabled.is_(True))
            )
            for eid, stype, value, org, bank, kind, owner, threshold in rows:
                organisation = org or owner or None
                if stype == "pdq":
                    pdq_values.append(value)
                    self._pdq_meta.append((eid, bank, kind, organisation, threshold, value))
                else:
                    self._exact.setdefault((stype, value), []).append(
                        (eid, bank, kind, organisation)
                    )
        self._pdq = hexes_to_array(pdq_values)
        self._thresholds = np.array([m[4] for m in self._pdq_meta], dtype=np.int32)

    def __call__(self, hashes: ImageHashes) -> list[CrawlMatch]:
        out: list[CrawlMatch] = []
        for stype, value in hashes.signals.items():
            if stype == "pdq":
                continue
            for eid, bank, kind, org in self._exact.get((stype, value), []):
                out.append(CrawlMatch(stype, 0, eid, bank, kind, org, value))
        if hashes.pdq is not None and len(self._pdq):
            d = hamming_many(hexes_to_array([hashes.pdq])[0], self._pdq)
            for i in np.flatnonzero(d <= self._thresholds):
                eid, bank, kind, org, _, value = self._pdq_meta[int(i)]
                out.append(CrawlMatch("pdq", int(d[i]), eid, bank, kind, org, value))
        return out
