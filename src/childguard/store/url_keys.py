"""Fixed-length keys for URLs, so unique indexes and lookups hold URLs of any length.

Crawled URLs come from the sites being watched and can be long (signed CDN links, tracking
query strings). PostgreSQL refuses a B-tree row over about 2.7 KB, and a `VARCHAR(n)` refuses
a longer value, so a long URL used to lose its sighting on PostgreSQL while SQLite kept it.
The crawl tables therefore store URLs whole as `TEXT` and index `url_key(url)`, the hex
SHA-256 of the URL's UTF-8 bytes (64 characters), instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

URL_KEY_LENGTH = 64


def url_key(url: str) -> str:
    """The indexed key of `url` (hex SHA-256 of its UTF-8; lone surrogates are kept, not lost)."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def key_default(column: str) -> Callable[[Any], str]:
    """A column default that keys the inserted row's `column` (an absent value keys as "")."""

    def default(context: Any) -> str:
        return url_key(context.get_current_parameters().get(column) or "")

    return default
