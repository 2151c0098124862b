# Owns the cursors and page sizes of the paginated /v1 lists.
"""Cursor pagination under `/v1`.

A list answers one page and a `next_cursor`: opaque to clients (URL-safe base64 of
`{"after": <last key of the page>}`), null on the last page. The key is a name for lists in
name order and an id for lists in id order; a cursor this API did not give, or one of the
other kind, is 400 `bad-cursor`.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from fastapi import Query

from childguard.service.api.problems import Problem

DEFAULT_PAGE = 50
MAX_PAGE = 1_000
MAX_ID = 2**63 - 1  # the largest id a 64-bit id column holds


def encode_cursor(after: str | int) -> str:
    """The cursor of the page that starts after `after` (a name or an id)."""
    raw = json.dumps({"after": after}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad_cursor() -> Problem:
    return Problem(400, "the cursor is not one this API gave", slug="bad-cursor")


def _after(cursor: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _bad_cursor() from None


def decode_cursor(cursor: str) -> str:
    """The name a cursor of a name-ordered list starts after; 400 for any other cursor."""
    after = _after(cursor)
    if not isinstance(after, str):
        raise _bad_cursor()
    return after


def decode_id_cursor(cursor: str) -> int:
    """The id a cursor of an id-ordered list starts after; 400 for any other cursor."""
    after = _after(cursor)
    if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_ID:
        raise _bad_cursor()
    return after


def limit_query() -> Any:
    """The `limit` parameter of a list: 1 to MAX_PAGE, DEFAULT_PAGE when not given."""
    return Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="items on one page")


def cursor_query() -> Any:
    """The `cursor` parameter of a list."""
    return Query(None, description="`next_cursor` of the previous page")


def filter_time(value: datetime | None, name: str) -> datetime | None:
    """A time a list is filtered by, in UTC (UTC when it names no zone); 422 for one that
    has no UTC equivalent."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise Problem(422, f"{name}: the time is out of range", slug="invalid-request") from None


def filter_text(value: str | None, name: str) -> str | None:
    """A text a list is filtered by (or a field is set to); 422 for one with a NUL character,
    which no text column holds."""
    if value is not None and "\x00" in value:
        raise Problem(422, f"{name}: a NUL character is not allowed", slug="invalid-request")
    return value
