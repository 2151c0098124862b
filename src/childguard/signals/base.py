"""The SignalType interface every signal module implements (after python-threatexchange).

A signal type names the content types it hashes, hashes content, validates and serialises its
values, compares two values into one small `SignalComparison`, has a default threshold and
names the index class that searches it (None: exact values, looked up in the store).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from childguard.errors import InvalidSignal
from childguard.index.base import SignalComparison
from childguard.media import BYTES, CONTENT_TYPES, PHOTO, VIDEO

if TYPE_CHECKING:
    from childguard.index.base import SignalIndex
    from childguard.media import Content

__all__ = [
    "BYTES",
    "CONTENT_TYPES",
    "PHOTO",
    "VIDEO",
    "SignalComparison",
    "SignalType",
    "SignalValue",
]


@dataclass(frozen=True)
class SignalValue:
    """One signal of some content: the canonical value and, where the type has one, its
    quality (0-100)."""

    value: str
    quality: int | None = None


class SignalType(ABC):
    """One kind of hash. Subclasses are stateless; every method is a classmethod."""

    name: ClassVar[str]
    # The content types (BYTES, PHOTO, VIDEO) this type hashes.
    content_types: ClassVar[frozenset[str]]
    # Exact types match only on equality; near types carry a distance and a default threshold.
    exact: ClassVar[bool]
    default_threshold: ClassVar[Any] = 0
    # Weak values (quality under this) are not searched; None where the type has no quality.
    min_quality: ClassVar[int | None] = None

    @classmethod
    def index_class(cls) -> type[SignalIndex] | None:
        """The index that searches this type's bank entries; None for exact types, which the
        store looks up by value."""
        return None

    @classmethod
    @abstractmethod
    def validate(cls, value: str) -> str:
        """Return the canonical form of `value`, or raise InvalidSignal saying why."""

    @classmethod
    @abstractmethod
    def compare(cls, a: str, b: str, threshold: Any = None) -> SignalComparison:
        """Compare two canonical values under `threshold` (default: `default_threshold`)."""

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return cls.compare(a, b).distance

    @classmethod
    def hash_content(cls, content: Content) -> SignalValue | None:
        """This type's signal of `content`, or None when the content has no such signal.
        Raises MediaError when the content cannot be decoded safely."""
        return None

    @classmethod
    def query_views(cls, content: Content, signal: SignalValue) -> list[tuple[str, SignalValue]]:
        """Further values to search for `content` besides its own `signal`, as (variant,
        value): views that undo an edit which only the query side can undo (borders, bars).
        Asked for by robust hashing; none by default. Raises MediaError like `hash_content`."""
        return []

    @classmethod
    def within(cls, comparison: SignalComparison, threshold: Any) -> bool:
        """Whether a comparison made at some looser threshold holds under `threshold`."""
        return comparison.distance <= int(threshold)

    @classmethod
    def parse_threshold(cls, raw: Any) -> Any:
        """A bank's threshold for this type from its stored or typed form; raises ValueError."""
        if raw is None:
            return cls.default_threshold
        value = int(raw)
        if value < 0:
            raise ValueError(f"a {cls.name} threshold must be 0 or more, got {raw!r}")
        return value

    @classmethod
    def threshold_json(cls, threshold: Any) -> Any:
        """A threshold in the plain JSON form `parse_threshold` reads back (banks store it)."""
        if dataclasses.is_dataclass(threshold) and not isinstance(threshold, type):
            return dataclasses.asdict(threshold)
        return threshold

    @classmethod
    def loosest(cls, thresholds: list[Any]) -> Any:
        """The threshold that admits everything any of `thresholds` admits (index search)."""
        return max((int(t) for t in thresholds), default=int(cls.default_threshold))

    @classmethod
    def claims(cls, value: str) -> bool:
        """Whether a bare value, with no type given, looks like this type's and no other's
        (used to detect the type of plain hash lists)."""
        return False

    @classmethod
    def store_key(cls, value: str) -> str:
        """The key a bank entry is stored and looked up under (the value itself, or a digest
        where values are long); see `childguard.store.models.BankEntry`."""
        return value

    @classmethod
    def invalid(cls, message: str, value: str) -> InvalidSignal:
        return InvalidSignal(f"not a {cls.name} hash ({message}): {value[:80]!r}")
