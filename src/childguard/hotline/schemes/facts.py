# Owns the facts an analyst records about an item: the typed record and its validation.
"""The facts an analyst records once, from which every scheme's label is derived.

Facts are neutral: an apparent age band, a severity in the UK scheme's tiers (the shared
severity vocabulary of every table here) or `none` / `posed`, and context flags. They say
nothing more about what an image shows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from itertools import product
from typing import Any

from childguard.errors import InputFormatError

AGE_BANDS = ("infant-toddler", "prepubescent", "pubescent", "adult", "unknown")
CHILD_BANDS = ("infant-toddler", "prepubescent", "pubescent")
# A, B, C: the UK categories' tiers; none: no sexual content; posed: a non-sexual posed image.
SEVERITIES = ("A", "B", "C", "posed", "none")
INDECENT = ("A", "B", "C")
FLAGS = (
    "harvested",  # a legal photo collected in a sexualised context
    "nationally_illegal",  # illegal under national law though not baseline
    "generated",  # computer-generated or otherwise not a photograph
    "self_produced",  # believed to be produced by the person shown
    "live_streamed",  # streamed live when it was captured
    "viral",  # circulating rapidly between users
    "meme",  # shared as mimicry, with no apparent malicious intent
)


class InvalidFacts(InputFormatError):
    """Facts that are not a valid record: an unknown band, severity or flag, or a
    contradiction (a harvested photo that is indecent, or of an adult)."""


@dataclass(frozen=True)
class Facts:
    """What an analyst records about one item."""

    age_band: str
    severity: str
    harvested: bool = False
    nationally_illegal: bool = False
    generated: bool = False
    self_produced: bool = False
    live_streamed: bool = False
    viral: bool = False
    meme: bool = False

    def __post_init__(self) -> None:
        if self.age_band not in AGE_BANDS:
            raise InvalidFacts(f"unknown age band {self.age_band!r}; bands: {', '.join(AGE_BANDS)}")
        if self.severity not in SEVERITIES:
            raise InvalidFacts(
                f"unknown severity {self.severity!r}; severities: {', '.join(SEVERITIES)}"
            )
        for name in FLAGS:
            if not isinstance(getattr(self, name), bool):
                raise InvalidFacts(f"flag {name!r} must be true or false")
        if self.harvested and self.severity in INDECENT:
            raise InvalidFacts("harvested is for legal photos: not with severity A, B or C")
        if self.harvested and self.age_band == "adult":
            raise InvalidFacts("harvested is for photos of children: not with age band adult")

    def flag(self, name: str) -> bool:
        return bool(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Facts:
        """Facts from a JSON object; InvalidFacts naming an unknown or missing field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidFacts(f"unknown fact(s) {', '.join(unknown)}; facts: {', '.join(known)}")
        for needed in ("age_band", "severity"):
            if needed not in raw:
                raise InvalidFacts(f"missing fact {needed!r}")
        return cls(**dict(raw))


def every_facts() -> Iterator[Facts]:
    """Every valid combination of facts (for checking the tables complete)."""
    for age in AGE_BANDS:
        for severity in SEVERITIES:
            for flags in product((False, True), repeat=len(FLAGS)):
                try:
                    yield Facts(age, severity, **dict(zip(FLAGS, flags, strict=True)))
                except InvalidFacts:
                    continue
