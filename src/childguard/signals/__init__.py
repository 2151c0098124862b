"""Signal types: one module per type, behind the `SignalType` interface in `base`.

Use `get_signal_type(name)` to look one up and `detect_signal_type(value)` to
guess the type of a bare hash string.
"""

from childguard.signals.base import SignalComparison, SignalType
from childguard.signals.exact import Md5Signal, Sha1Signal, Sha256Signal
from childguard.signals.pdq import PdqSignal

SIGNAL_TYPES: dict[str, type[SignalType]] = {
    cls.name: cls for cls in (PdqSignal, Md5Signal, Sha1Signal, Sha256Signal)
}
EXACT_SIGNAL_TYPES = ("md5", "sha1", "sha256")


def get_signal_type(name: str) -> type[SignalType]:
    """The signal type class for a name such as `pdq` or `sha256`."""
    try:
        return SIGNAL_TYPES[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(SIGNAL_TYPES))
        raise ValueError(f"unknown signal type {name!r}; known types: {known}") from None


def detect_signal_type(value: str) -> str | None:
    """Guess the signal type of a bare hex string from its length.

    32 hex digits are md5 and 40 are sha1. 64 hex digits could be PDQ or SHA-256,
    so the answer is None there and the caller must be told the type.
    """
    v = value.strip().lower()
    if not v or any(c not in "0123456789abcdef" for c in v):
        return None
    return {32: "md5", 40: "sha1"}.get(len(v))


__all__ = [
    "EXACT_SIGNAL_TYPES",
    "SIGNAL_TYPES",
    "Md5Signal",
    "PdqSignal",
    "Sha1Signal",
    "Sha256Signal",
    "SignalComparison",
    "SignalType",
    "detect_signal_type",
    "get_signal_type",
]
