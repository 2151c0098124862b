"""The SignalType interface every signal module implements (after python-threatexchange)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class SignalComparison:
    """The result of comparing two signals of one type."""

    match: bool
    distance: int


class SignalType(ABC):
    """One kind of hash. Subclasses are stateless; every method is a classmethod."""

    name: ClassVar[str]
    # Exact types match only on equality; near types carry a distance and a default threshold.
    exact: ClassVar[bool]
    default_threshold: ClassVar[int] = 0

    @classmethod
    @abstractmethod
    def validate(cls, value: str) -> str:
        """Return the canonical form of `value`, or raise InvalidSignal saying why."""

    @classmethod
    @abstractmethod
    def distance(cls, a: str, b: str) -> int:
        """Distance between two canonical values (0 is identical)."""

    @classmethod
    def compare(cls, a: str, b: str, threshold: int | None = None) -> SignalComparison:
        d = cls.distance(a, b)
        t = cls.default_threshold if threshold is None else threshold
        return SignalComparison(match=d <= t, distance=d)
