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
from typing import Any

from fastapi import Query

from childguard.service.api.problems import Problem

DEFAULT_PAGE = 50
MAX_PAGE = 1_000


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
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise _bad_cursor()
    return after


def limit_query() -> Any:
    """The `limit` parameter of a list: 1 to MAX_PAGE, DEFAULT_PAGE when not given."""
    return Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="items on one page")


def cursor_query() -> Any:
    """The `cursor` parameter of a list."""
    return Query(None, description="`next_cursor` of the previous page")
