"""`ContentSignals`: everything childguard knows about one piece of content, from hashing to
storage. It is the one record every source, the matcher and every output use.

`signals` holds one `SignalValue` per registered signal type that hashed the content (exact
types whenever the bytes could be read, perceptual types when the content decoded). `views`
are further values to search for it (robust PDQ views, rotations and flips), each naming the
signal type it belongs to; `features` carries what verification against protected photos
needs (never pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from childguard.signals.base import SignalValue
from childguard.signals.registry import SIGNAL_TYPES, near_types

ORIGINAL = "original"


@dataclass(frozen=True)
class QueryView:
    """One value to search for some content: its signal type, value, quality and which view
    of the content it is ("original", "rot90", "trimmed", "region0", ...)."""

    signal_type: str
    value: str
    quality: int | None = None
    variant: str = ORIGINAL


@dataclass
class ContentSignals:
    """The signals of one piece of content. `error` is None when hashing succeeded.

    `path` is where the content came from: a file path, `archive.zip!member`, or a URL."""

    path: str
    size: int | None = None
    content_type: str | None = None
    signals: dict[str, SignalValue] = field(default_factory=dict)
    width: int | None = None
    height: int | None = None
    format: str | None = None
    error: str | None = None
    views: list[QueryView] | None = field(default=None, repr=False)
    features: Any = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def value(self, signal_type: str) -> str | None:
        found = self.signals.get(signal_type)
        return found.value if found is not None else None

    def quality(self, signal_type: str) -> int | None:
        found = self.signals.get(signal_type)
        return found.quality if found is not None else None

    def set(self, signal_type: str, value: str, quality: int | None = None) -> None:
        self.signals[signal_type] = SignalValue(value, quality)

    def exact(self) -> dict[str, str]:
        """signal type -> value of the exact signals."""
        return {t: v.value for t, v in self.signals.items() if SIGNAL_TYPES[t].exact}

    def query_views(self, *, variants: bool = True) -> list[QueryView]:
        """Every near value to search: the original signal of each near type, then `views`
        (when `variants`), without repeats."""
        out: list[QueryView] = []
        seen: set[tuple[str, str, str]] = set()
        originals = [
            QueryView(t, v.value, v.quality)
            for t in near_types()
            if (v := self.signals.get(t)) is not None
        ]
        for view in originals + (list(self.views or []) if variants else []):
            key = (view.signal_type, view.value, view.variant)
            if key not in seen:
                seen.add(key)
                out.append(view)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The record in the hash output layout: path, size, every signal type (and its
        quality where it has one), width, height, format, error."""
        out: dict[str, Any] = {"path": self.path, "size": self.size}
        for name, cls in SIGNAL_TYPES.items():
            found = self.signals.get(name)
            out[name] = found.value if found is not None else None
            if cls.min_quality is not None:
                out[f"{name}_quality"] = found.quality if found is not None else None
        out.update(width=self.width, height=self.height, format=self.format, error=self.error)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContentSignals:
        """A record from `to_dict` output (views and features are not part of it)."""
        record = cls(
            path=str(data.get("path") or ""),
            size=data.get("size"),
            width=data.get("width"),
            height=data.get("height"),
            format=data.get("format"),
            error=data.get("error"),
        )
        for name in SIGNAL_TYPES:
            value = data.get(name)
            if value:
                quality = data.get(f"{name}_quality")
                record.set(name, str(value), int(quality) if quality is not None else None)
        return record


def output_fields() -> tuple[str, ...]:
    """Column order of the hash outputs (JSON Lines keys, CSV header)."""
    return tuple(ContentSignals(path="").to_dict())
