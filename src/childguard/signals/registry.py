"""The registry of signal types: every module in `signals/` registers its class here, and the
rest of childguard loops over what is registered."""

from __future__ import annotations

from collections.abc import Iterable

from childguard.signals.base import SignalType
from childguard.signals.exact import Md5Signal, Sha1Signal, Sha256Signal
from childguard.signals.pdq import PdqSignal
from childguard.signals.vpdq import VpdqSignal

# Output order: exact types first, then perceptual ones.
SIGNAL_TYPES: dict[str, type[SignalType]] = {
    cls.name: cls for cls in (Md5Signal, Sha1Signal, Sha256Signal, PdqSignal, VpdqSignal)
}


def get_signal_type(name: str) -> type[SignalType]:
    """The signal type class for a name such as `pdq` or `sha256`."""
    try:
        return SIGNAL_TYPES[name.strip().lower()]
    except KeyError:
        known = ", ".join(sorted(SIGNAL_TYPES))
        raise ValueError(f"unknown signal type {name!r}; known types: {known}") from None


def exact_types() -> list[str]:
    return [n for n, cls in SIGNAL_TYPES.items() if cls.exact]


def near_types() -> list[str]:
    """Types matched by distance through an index of their own."""
    return [n for n, cls in SIGNAL_TYPES.items() if not cls.exact]


def types_for(content_types: Iterable[str]) -> list[type[SignalType]]:
    """The signal types that hash content of any of `content_types`, in registry order."""
    wanted = frozenset(content_types)
    return [cls for cls in SIGNAL_TYPES.values() if cls.content_types & wanted]


def detect_signal_type(value: str) -> str | None:
    """Guess the signal type of a bare hash string from its shape.

    Each type may claim a value (`SignalType.claims`); a value claimed by exactly one type is
    that type's. 64 hex digits could be PDQ or SHA-256, so the answer is None there and the
    caller must be told the type."""
    v = value.strip()
    claims = [n for n, cls in SIGNAL_TYPES.items() if cls.claims(v)]
    return claims[0] if len(claims) == 1 else None
