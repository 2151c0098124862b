"""How the crawler asks for matches: any callable `match(ContentSignals) -> list[Match]`.

The store's matcher (`childguard.matcher.Matcher`, opened inside the crawl's process by
`StoreMatcher`) or a test's function both fit; a matcher may say `needs_features` (the hash
stage then computes ORB features for protected verification). Matches are the matcher's own
`Match`, carried unchanged to the sightings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from childguard.matcher.results import Match
from childguard.signals.content import ContentSignals

MatchFn = Callable[[ContentSignals], Sequence[Match]]


def no_matches(_: ContentSignals) -> list[Match]:
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

    def __call__(self, record: ContentSignals) -> list[Match]:
        """Matches of one piece of content: its robust views and, for protected banks, its
        features (`Matcher.match` semantics)."""
        return list(self._open()(record))
