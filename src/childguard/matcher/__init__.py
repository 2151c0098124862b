"""Matching: signals of content against every enabled bank, with per-bank thresholds, allow
banks, a PDQ quality floor, dihedral and robust query views.

    from childguard.matcher import Matcher
    matcher = Matcher(open_store())
    outcome = matcher.match(hash_file(path, robust=True))
"""

from childguard.matcher.bank_index import BankIndex, SyncReport, index_path
from childguard.matcher.engine import Matcher, bank_thresholds
from childguard.matcher.results import Match, MatchOutcome

__all__ = [
    "BankIndex",
    "Match",
    "MatchOutcome",
    "Matcher",
    "SyncReport",
    "bank_thresholds",
    "index_path",
]
