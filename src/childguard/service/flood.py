# Owns flood control: matches per bank per minute, and quarantining a bank past its cap.
"""Flood control (HMA #1994): a bank that answers more matches in a minute than its cap is
quarantined, so a bad entry (a hash that matches everything) cannot flood the platforms and
the analysts with hits.

Every batch the service's matcher answers is counted here (`observe`, the matcher's
`on_outcomes`): query signals by type and matches by bank, for the metrics, and each bank's
matches over a moving minute against its `match_cap_per_minute` (None: the
`bank_match_cap_per_minute` setting; 0: no cap). A bank past its cap is quarantined through
`childguard.banks.quarantine_bank` (audited, actor `service:flood-control`) by `settle`, which
the service runs right after the query (outside the matcher's lock), then refreshes its
matcher; every other worker stops matching the bank at its next refresh. It matches again
once a curator releases it (`PATCH /v1/banks/{name}` with `{"quarantined": false}`, or
`childguard bank release`), from an empty minute.

Counts are kept in memory by each worker, so with N workers a bank may answer up to N times
its cap in a minute before every worker has seen it pass.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from childguard.banks import BankNotFound, quarantine_bank
from childguard.log import get_logger
from childguard.matcher import MatchOutcome
from childguard.matcher.engine import BankSettings
from childguard.service import metrics
from childguard.signals.content import ContentSignals
from childguard.store import Store

log = get_logger(__name__)
ACTOR = "service:flood-control"


class FloodControl:
    """Counts the matches one service process answers and quarantines banks past their cap."""

    def __init__(self, store: Store, default_cap: int) -> None:
        self.store = store
        self.default_cap = default_cap
        self._window = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[str, int]] = {}  # bank id -> (name, cap)
        # Bumped when a bank is released, so it starts again from an empty minute.
        self._generation: dict[int, int] = {}
        self._quarantined: set[int] = set()

    def cap_of(self, bank: BankSettings) -> int:
        """The cap that applies to a bank (0: no cap)."""
        own = bank.match_cap_per_minute
        return self.default_cap if own is None else own

    def observe(
        self,
        records: Sequence[ContentSignals],
        outcomes: Sequence[MatchOutcome],
        banks: Mapping[int, BankSettings],
    ) -> None:
        """Count one answered batch; banks it takes past their cap wait for `settle`."""
        lookups = Counter(t for r in records for t in r.signals)
        by_type: Counter[tuple[str, str]] = Counter()
        by_bank: Counter[int] = Counter()
        for outcome in outcomes:
            for match in (*outcome.matches, *outcome.allowed_by):
                by_type[(match.signal_type, match.bank_name)] += 1
                by_bank[match.bank_id] += 1
        metrics.observe_matches(lookups, by_type)
        with self._lock:
            for bank_id, n in by_bank.items():
                bank = banks.get(bank_id)
                cap = self.cap_of(bank) if bank is not None else 0
                if cap <= 0 or bank_id in self._pending:
                    continue
                generation = str(self._generation.get(bank_id, 0))
                item = RateLimitItemPerMinute(cap)
                if not self._window.hit(item, str(bank_id), generation, cost=n):
                    assert bank is not None
                    self._pending[bank_id] = (bank.name, cap)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def settle(self) -> bool:
        """Quarantine the banks found past their cap; whether any was (the caller then
        refreshes its matcher)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        done = False
        for bank_id, (name, cap) in pending.items():
            reason = f"more than {cap} matches in a minute (its match cap)"
            try:
                quarantine_bank(self.store, bank_id, reason, actor=ACTOR)
            except BankNotFound:
                continue
            metrics.QUARANTINES.labels(name).inc()
            log.warning("bank.quarantined", bank=name, cap_per_minute=cap, reason=reason)
            done = True
        return done

    def follow(self, banks: Mapping[int, BankSettings]) -> int:
        """The matcher has refreshed: a bank released since the last refresh starts from an
        empty minute. Returns how many banks are quarantined now."""
        now = {bank_id for bank_id, b in banks.items() if b.quarantined}
        with self._lock:
            for bank_id in self._quarantined - now:
                self._generation[bank_id] = self._generation.get(bank_id, 0) + 1
            self._quarantined = now
        return len(now)
