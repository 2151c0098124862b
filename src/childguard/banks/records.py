"""The plain records that flow between hash-list formats and the bank service."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from childguard.banks.schemes import scheme_problem
from childguard.errors import InputFormatError, InvalidSignal
from childguard.signals import get_signal_type


@dataclass(frozen=True)
class EntryRecord:
    """One signal with its provenance and classification, as read from or written to a file.

    `position` is where the record was found in its input (a line or record number, see
    `position_kind`); it is for error messages only and not part of equality.
    """

    signal_type: str
    value: str
    source: str | None = None
    organisation: str | None = None
    original_id: str | None = None
    classification_scheme: str | None = None
    classification_label: str | None = None
    metadata: dict[str, Any] | None = None
    imported_at: datetime | None = None
    position: int | None = field(default=None, compare=False)
    position_kind: str = field(default="line", compare=False)


@dataclass(frozen=True)
class InvalidRecord:
    """A line or record of an input that could not be read, and why."""

    position: int
    reason: str
    position_kind: str = "line"  # "line" or "record"

    def error(self) -> InputFormatError:
        if self.position_kind == "record":
            return InputFormatError(self.reason, record=self.position)
        return InputFormatError(self.reason, line=self.position)

    def describe(self) -> str:
        return f"{self.position_kind} {self.position}: {self.reason}"


def canonical_signal(signal_type: str, value: str) -> tuple[str, str]:
    """The canonical (type name, value) pair, or InvalidSignal saying what is wrong."""
    try:
        cls = get_signal_type(signal_type)
    except ValueError as exc:
        raise InvalidSignal(str(exc)) from None
    return cls.name, cls.validate(value)


def stored_form(signal_type: str, value: str) -> tuple[str, str | None]:
    """(key, payload) a canonical value is stored as: the type's `store_key` in
    `bank_entry.value`, and the whole value in `payload` where the key is not the value."""
    key = get_signal_type(signal_type).store_key(value)
    return key, (None if key == value else value)


def lookup_key(signal_type: str, value: str) -> str:
    """The key an entry holding this canonical value is found under."""
    return stored_form(signal_type, value)[0]


def bank_thresholds_json(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Per-signal-type thresholds checked by their types and in the form banks store; raises
    InputFormatError naming the type and what is wrong."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            cls = get_signal_type(name)
        except ValueError as exc:
            raise InputFormatError(str(exc)) from None
        if cls.exact:
            raise InputFormatError(f"{cls.name} signals are exact: they take no threshold")
        try:
            out[cls.name] = cls.threshold_json(cls.parse_threshold(value))
        except (TypeError, ValueError) as exc:
            raise InputFormatError(f"bad {cls.name} threshold {value!r}: {exc}") from None
    return out


# Column widths of the store (childguard.store.models.BankEntry).
FIELD_LIMITS = {
    "source": 500,
    "organisation": 200,
    "original_id": 200,
    "classification_scheme": 64,
    "classification_label": 64,
}


def validated(record: EntryRecord) -> EntryRecord | InvalidRecord:
    """`record` with a canonical type and value, or an InvalidRecord at its position."""
    for name, limit in FIELD_LIMITS.items():
        text = getattr(record, name)
        if text is not None and len(text) > limit:
            reason = f"{name} is longer than {limit} characters"
            return InvalidRecord(record.position or 0, reason, record.position_kind)
    problem = scheme_problem(record.classification_scheme)
    if problem is not None:
        return InvalidRecord(record.position or 0, problem, record.position_kind)
    try:
        t, v = canonical_signal(record.signal_type, record.value)
    except InvalidSignal as exc:
        return InvalidRecord(record.position or 0, str(exc), record.position_kind)
    if t == record.signal_type and v == record.value:
        return record
    return replace(record, signal_type=t, value=v)
