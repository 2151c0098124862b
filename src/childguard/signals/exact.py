"""Exact cryptographic signals (md5, sha1, sha256) over the raw content bytes."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, ClassVar

from childguard.errors import InvalidSignal
from childguard.signals.base import BYTES, SignalComparison, SignalType, SignalValue

if TYPE_CHECKING:
    from childguard.media import Content

_HEX = frozenset("0123456789abcdef")


class _ExactSignal(SignalType):
    exact: ClassVar[bool] = True
    content_types: ClassVar[frozenset[str]] = frozenset({BYTES})
    hex_len: ClassVar[int]
    # Bare values of this length are this type's (64 digits are also PDQ: not claimed).
    claims_bare: ClassVar[bool] = True

    @classmethod
    def validate(cls, value: str) -> str:
        v = value.strip().lower()
        if len(v) != cls.hex_len or not set(v) <= _HEX:
            raise InvalidSignal(
                f"not a {cls.name} hash (want {cls.hex_len} hex digits): {value[:80]!r}"
            )
        return v

    @classmethod
    def compare(cls, a: str, b: str, threshold: Any = None) -> SignalComparison:
        same = a == b
        return SignalComparison(match=same, distance=0 if same else 1)

    @classmethod
    def claims(cls, value: str) -> bool:
        v = value.lower()
        return cls.claims_bare and len(v) == cls.hex_len and set(v) <= _HEX

    @classmethod
    def hash_bytes(cls, data: bytes) -> str:
        return hashlib.new(cls.name, data).hexdigest()

    @classmethod
    def hash_content(cls, content: Content) -> SignalValue | None:
        """The digest of the content's bytes: the one its caller computed already
        (`Content.digests`, e.g. the crawl's, which keys its cache), else computed here."""
        if not content.data:
            return None
        known = content.digest(cls.name)
        return SignalValue(known if known is not None else cls.hash_bytes(content.data))


class Md5Signal(_ExactSignal):
    name = "md5"
    hex_len = 32


class Sha1Signal(_ExactSignal):
    name = "sha1"
    hex_len = 40


class Sha256Signal(_ExactSignal):
    name = "sha256"
    hex_len = 64
    claims_bare = False


def exact_hashes(data: bytes) -> dict[str, str]:
    """md5, sha1 and sha256 of `data` in one call."""
    return {
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
