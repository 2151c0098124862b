"""Items for the review tests, made through `childguard.hotline.items.record_content` from
small synthetic photos (`tests/sample_media.py`)."""

from __future__ import annotations

from datetime import datetime

from childguard.hotline.items import Place, record_content
from childguard.matcher import Match
from childguard.pipeline import hash_bytes
from childguard.store.db import Store
from sample_media import jpeg_bytes


def make_item(
    store: Store, seed: int, *, matches: list[Match] | None = None, seen: datetime | None = None
) -> int:
    """A new item of synthetic photo `seed`, seen at a test URL (at `seen`)."""
    signals = hash_bytes(jpeg_bytes(seed), path=f"http://site.test/{seed}.jpg")
    outcome = record_content(
        store,
        signals,
        matches or [],
        Place(url=f"http://site.test/{seed}.jpg", page_url="http://site.test/", seen_at=seen),
    )
    return outcome.item_id
