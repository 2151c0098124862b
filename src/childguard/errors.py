"""Exception types shared across childguard; each carries a message a user can act on."""

from __future__ import annotations


class ChildguardError(Exception):
    """Base class for every error childguard raises on purpose."""


class MediaError(ChildguardError):
    """Content could not be decoded safely. `reason` is a short stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    @classmethod
    def parse(cls, text: str) -> MediaError:
        """The error a record's `error` text ("reason: message") stands for."""
        reason, _, message = text.partition(": ")
        return cls(reason, message or reason)


class InvalidSignal(ChildguardError):
    """A hash string is not a valid value of its signal type."""


class InputFormatError(ChildguardError):
    """A file given to childguard (hash list, config) is malformed. Carries where."""

    def __init__(self, message: str, *, line: int | None = None, record: int | None = None) -> None:
        where = (
            f"line {line}: "
            if line is not None
            else (f"record {record}: " if record is not None else "")
        )
        super().__init__(f"{where}{message}")
        self.line = line
        self.record = record
        self.reason = message
