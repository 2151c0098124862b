"""How the crawler asks for matches: any callable `match(ImageHashes) -> list[CrawlMatch-like]`.

The store's matcher (`childguard.matcher.Matcher`) or a test's function both fit; a matcher
may say `needs_features` (the hash stage then computes ORB features for protected verification):
`as_crawl_match` reads the usual attribute names off whatever a matcher returns
(entry id, distance, signal type, bank, bank kind, organisation), so the crawler
does not depend on one matcher's result class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from childguard.crawl.hashing import ImageHashes


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


class StoreMatcher:
    """The crawler's matcher over a store's banks: opens the store and a
    `childguard.matcher.Matcher` on first use, so it is built inside the crawl's own process
    and nothing (connections, index arrays) is shared across the fork."""

    def __init__(self, store_url: str) -> None:
        self.store_url = store_url
        self._matcher: Any = None

    def _open(self) -> Any:
        if self._matcher is None:
            from childguard.matcher import Matcher
            from childguard.store.db import open_store

            self._matcher = Matcher(open_store(self.store_url))
        return self._matcher

    @property
    def needs_features(self) -> bool:
        """Whether images should carry ORB features (protected photos registered with them)."""
        return bool(self._open().needs_features)

    def __call__(self, hashes: ImageHashes) -> list[Any]:
        """Matches of one image: its robust views and, for protected banks, its features
        (`Matcher.match_record` semantics)."""
        return list(self._open()(hashes))
