"""Signal types: one module per type, behind the `SignalType` interface in `base`, registered in
`registry`. `ContentSignals` (in `content`) is the record of one piece of content's signals.

Use `get_signal_type(name)` to look one up and `detect_signal_type(value)` to guess the type of
a bare hash string.
"""

from childguard.signals.base import SignalComparison, SignalType, SignalValue
from childguard.signals.exact import Md5Signal, Sha1Signal, Sha256Signal
from childguard.signals.pdq import PdqSignal
from childguard.signals.registry import (
    SIGNAL_TYPES,
    detect_signal_type,
    exact_types,
    get_signal_type,
    near_types,
    types_for,
)
from childguard.signals.vpdq import VpdqSignal

__all__ = [
    "SIGNAL_TYPES",
    "Md5Signal",
    "PdqSignal",
    "Sha1Signal",
    "Sha256Signal",
    "SignalComparison",
    "SignalType",
    "SignalValue",
    "VpdqSignal",
    "detect_signal_type",
    "exact_types",
    "get_signal_type",
    "near_types",
    "types_for",
]
