"""Exception types shared across childguard; each carries a message a user can act on."""


class ChildguardError(Exception):
    """Base class for every error childguard raises on purpose."""


class MediaError(ChildguardError):
    """Content could not be decoded safely. `reason` is a short stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


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
