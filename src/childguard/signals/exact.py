"""Exact cryptographic signals (md5, sha1, sha256) over the raw content bytes."""

from __future__ import annotations

import hashlib
from typing import ClassVar

from childguard.errors import InvalidSignal
from childguard.signals.base import SignalType

_HEX = frozenset("0123456789abcdef")


class _ExactSignal(SignalType):
    exact: ClassVar[bool] = True
    hex_len: ClassVar[int]

    @classmethod
    def validate(cls, value: str) -> str:
        v = value.strip().lower()
        if len(v) != cls.hex_len or not set(v) <= _HEX:
            raise InvalidSignal(
                f"not a {cls.name} hash (want {cls.hex_len} hex digits): {value[:80]!r}"
            )
        return v

    @classmethod
    def distance(cls, a: str, b: str) -> int:
        return 0 if a == b else 1

    @classmethod
    def hash_bytes(cls, data: bytes) -> str:
        return hashlib.new(cls.name, data).hexdigest()


class Md5Signal(_ExactSignal):
    name = "md5"
    hex_len = 32


class Sha1Signal(_ExactSignal):
    name = "sha1"
    hex_len = 40


class Sha256Signal(_ExactSignal):
    name = "sha256"
    hex_len = 64


def exact_hashes(data: bytes) -> dict[str, str]:
    """md5, sha1 and sha256 of `data` in one call."""
    return {
        "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
        "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
