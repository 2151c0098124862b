# Owns what every hash-list reader applies to hostile input: the text encoding of a list file
# and where its decoding failed, JSON parsed within limits, and the last checks on a record
# before it may reach the store.
"""Hostile hash lists end in a message with a line or record number, never a traceback.

- `open_list(raw)` reads a list file as UTF-8 (a byte order mark is dropped) or, when it
  starts with a UTF-16 byte order mark, as UTF-16; `decode_error(path, encoding, exc)` turns
  a decoding failure into an `InputFormatError` naming the line it is on.
- `load_json(text)` parses JSON with numbers the store can hold: an integer of more digits
  than Python converts, a float out of range, NaN and Infinity become `Unstorable` values
  that `unstorable()` reports for the record that holds them; nesting deeper than the
  parser's stack is an `InputFormatError` with the item number and line.
- `checked(record)` validates a record (`childguard.banks.records.validated`) and refuses
  what the store cannot hold: NUL characters and lone surrogates in its text fields, lone
  surrogates in its metadata, metadata nested more than `MAX_DEPTH` levels, an
  `imported_at` that cannot be put in UTC or lies in the year 9999.
"""

from __future__ import annotations

import codecs
import io
import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from childguard.banks.records import EntryRecord, InvalidRecord, validated
from childguard.errors import InputFormatError

# How deep a record's JSON (VICS fields, CSV metadata) may nest.
MAX_DEPTH = 32
# The first time an imported_at may not be: the last year Python's datetime holds, where
# adding to a time overflows.
LATEST_TIME = datetime(9999, 1, 1, tzinfo=UTC)
# Python converts integers of at most this many digits (sys.get_int_max_str_digits()).
MAX_INT_DIGITS = 4300

_TEXT_FIELDS = (
    "source",
    "organisation",
    "original_id",
    "classification_scheme",
    "classification_label",
)
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


class Unstorable:
    """A JSON number the store cannot hold, kept as its text with the reason."""

    __slots__ = ("reason", "text")

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<{self.reason}>"


def _int(text: str) -> int | Unstorable:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return Unstorable(text, f"a number of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float | Unstorable:
    value = float(text)
    if not math.isfinite(value):
        return Unstorable(text, f"a number out of range ({text[:40]}...)")
    return value


def _constant(text: str) -> Unstorable:
    return Unstorable(text, f"{text} is not a JSON number")


def load_json(text: str) -> Any:
    """The JSON value of `text`; InputFormatError (record 0, or the item of the top-level list
    where it nests too deep) when it cannot be read."""
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise InputFormatError(
            f"not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}", record=0
        ) from None
    except RecursionError:
        raise _too_deep(text) from None


def load_json_value(text: str) -> tuple[Any, str | None]:
    """(value, None), or (None, why it cannot be read) for JSON inside one record."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        return None, f"not JSON: {exc}"
    except RecursionError:
        return None, f"JSON nested more than {MAX_DEPTH} levels deep"
    reason = unstorable(value)
    return (None, reason) if reason else (value, None)


def _too_deep(text: str) -> InputFormatError:
    """Where a JSON text first nests deeper than the parser can follow."""
    limit = 500
    depth = item = 0
    line, line_start = 1, 0
    in_string = escaped = False
    for offset, ch in enumerate(text):
        if ch == "\n":
            line, line_start = line + 1, offset + 1
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth == 2:
                item = 1
            if depth > limit:
                return InputFormatError(
                    f"JSON nested more than {limit} levels deep (line {line}, column "
                    f"{offset - line_start + 1}); nothing was imported",
                    record=item,
                )
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 2:
            item += 1
    return InputFormatError("JSON nested too deep to read; nothing was imported", record=item)


def unstorable(value: Any, depth: int = 0, where: str = "") -> str | None:
    """Why a parsed JSON value cannot be stored (a number out of range, a lone surrogate,
    nesting deeper than MAX_DEPTH), naming the field; None when it can. (A NUL character is
    stored escaped inside JSON, so it may be there.)"""
    if isinstance(value, Unstorable):
        return f"{where or 'value'}: {value.reason}"
    if isinstance(value, str):
        return f"{where or 'value'}: {_SURROGATE}" if _has_surrogate(value) else None
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            top = where.split(".", 1)[0] or "value"
            return f"{top}: nested more than {MAX_DEPTH} levels deep"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            name = f"{where}.{key}" if where else str(key)
            if isinstance(key, str) and _has_surrogate(key):
                return f"{name}: the key {_SURROGATE}"
            reason = unstorable(item, depth + 1, name)
            if reason:
                return reason
    return None


_SURROGATE = "contains a lone surrogate (\\ud800-\\udfff), which is not text"


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (is the file UTF-16 without a byte order mark?)"
    return _SURROGATE if _has_surrogate(text) else None


def checked(record: EntryRecord) -> EntryRecord | InvalidRecord:
    """`validated(record)` plus what the store cannot hold; an InvalidRecord at its position."""

    def invalid(reason: str) -> InvalidRecord:
        return InvalidRecord(record.position or 0, reason, record.position_kind)

    if "\x00" in record.value:
        return invalid(f"value {_text_problem(record.value)}")
    try:
        valid = validated(record)  # a valid value is canonical text of its type
    except RecursionError:
        return invalid("the value is JSON nested too deep to read")
    if isinstance(valid, InvalidRecord):
        return valid
    for name in _TEXT_FIELDS:
        text = getattr(valid, name)
        if text is not None and (problem := _text_problem(text)):
            return invalid(f"{name} {problem}")
    if valid.metadata is not None and (reason := unstorable(valid.metadata)):
        return invalid(f"metadata {reason}")
    given = valid.imported_at
    if given is not None:
        try:
            at = (given if given.tzinfo else given.replace(tzinfo=UTC)).astimezone(UTC)
        except OverflowError:
            return invalid(f"imported_at {given.isoformat()} is out of range")
        if at >= LATEST_TIME:
            return invalid(f"imported_at {given.isoformat()} is out of range (want before 9999)")
        valid = replace(valid, imported_at=at)
    return valid


def sniff_encoding(head: bytes) -> str:
    """The encoding a list file starting with `head` is read in; InputFormatError for UTF-32."""
    if head.startswith(UTF32_BOMS):
        raise InputFormatError("the file is UTF-32 text; save the list as UTF-8", line=1)
    if head.startswith(UTF16_BOMS):
        return "utf-16"
    return "utf-8-sig"


def open_list(raw: io.RawIOBase) -> tuple[io.TextIOWrapper, str]:
    """A text stream over a list file's bytes (lines kept as they are), and its encoding."""
    buffered = io.BufferedReader(raw, 1 << 20)
    encoding = sniff_encoding(buffered.peek(4)[:4])
    return io.TextIOWrapper(buffered, encoding=encoding, newline=""), encoding


def decode_error(path: Path, encoding: str, exc: UnicodeDecodeError) -> InputFormatError:
    """The decoding failure of a list file, with the line it is on."""
    name = "UTF-16" if encoding == "utf-16" else "UTF-8"
    if encoding == "utf-16":
        data = path.read_bytes()
        try:
            data.decode("utf-16")
        except UnicodeDecodeError as found:
            before = data[: found.start - found.start % 2]
            line = before.decode("utf-16", errors="replace").count("\n") + 1
            return InputFormatError(
                f"{path.name}: not valid {name} text at byte {found.start} ({found.reason})",
                line=line,
            )
        return InputFormatError(f"{path.name}: not valid {name} text ({exc.reason})")
    with path.open("rb") as f:
        for number, raw_line in enumerate(f, 1):
            text = raw_line
            if number == 1 and raw_line.startswith(codecs.BOM_UTF8):
                text = raw_line[len(codecs.BOM_UTF8) :]
            try:
                text.decode("utf-8")
            except UnicodeDecodeError as found:
                return InputFormatError(
                    f"{path.name}: not valid {name} text at column {found.start + 1} "
                    f"(byte {found.object[found.start : found.start + 1]!r}: {found.reason}); "
                    "save the list as UTF-8",
                    line=number,
                )
    return InputFormatError(f"{path.name}: not valid {name} text ({exc.reason})")
