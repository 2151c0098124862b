"""Items at the library level: exact and near (PDQ, vPDQ) deduplication with configurable
thresholds, idempotent places, audited writes."""

from __future__ import annotations

import hashlib
import random

from sqlalchemy import select

from childguard.hotline.items import DedupeSettings, Place, record_content
from childguard.index.vpdq import VpdqThreshold
from childguard.signals.content import ContentSignals
from childguard.signals.vpdq import VpdqFrame, frames_to_value
from childguard.store.db import Store
from childguard.store.hotline_models import Item, ItemPlace
from childguard.store.models import AuditEvent

rng = random.Random(7)


def _hex() -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(64))


def _flip(value: str, bits: int, offset: int = 0) -> str:
    number = int(value, 16)
    for bit in range(bits):
        number ^= 1 << (bit * 7 + offset)
    return f"{number:064x}"


def _signals(name: str, *, pdq: str | None = None, vpdq: str | None = None) -> ContentSignals:
    record = ContentSignals(path=name, size=10, content_type="video" if vpdq else "photo")
    record.set("sha256", hashlib.sha256(name.encode()).hexdigest())
    record.set("md5", hashlib.md5(name.encode()).hexdigest())
    if pdq:
        record.set("pdq", pdq, 100)
    if vpdq:
        record.set("vpdq", vpdq)
    return record


def _video(hexes: list[str]) -> str:
    return frames_to_value(VpdqFrame(h, 100, float(i)) for i, h in enumerate(hexes))


def test_pdq_near_duplicates_follow_the_configured_threshold(store: Store) -> None:
    base = _hex()
    first = record_content(store, _signals("a", pdq=base), [], Place("http://s.example/a"))
    near = record_content(
        store, _signals("b", pdq=_flip(base, 10)), [], Place("http://s.example/b")
    )
    strict = DedupeSettings(pdq=5)
    apart = record_content(
        store,
        _signals("c", pdq=_flip(base, 10)[::-1]),
        [],
        Place("http://s.example/c"),
        dedupe=strict,
    )
    far = record_content(
        store, _signals("d", pdq=_flip(base, 8, 3)), [], Place("http://s.example/d"), dedupe=strict
    )
    assert first.created and first.duplicate_of is None
    assert near.duplicate_of == first.item_id  # 10 bits apart, within 31
    assert apart.duplicate_of is None
    assert far.duplicate_of is None  # 8 bits from a, 18 from b: outside 5


def test_vpdq_near_duplicates_and_a_different_video(store: Store) -> None:
    frames = [_hex() for _ in range(10)]
    video = record_content(store, _signals("v1", vpdq=_video(frames)), [], Place("http://v/1"))
    recut = record_content(store, _signals("v2", vpdq=_video(frames[:9])), [], Place("http://v/2"))
    other = record_content(
        store, _signals("v3", vpdq=_video([_hex() for _ in range(10)])), [], Place("http://v/3")
    )
    assert recut.duplicate_of == video.item_id and other.duplicate_of is None
    strict = DedupeSettings(vpdq=VpdqThreshold(100.0, 100.0))
    cut = record_content(
        store, _signals("v4", vpdq=_video(frames[:5])), [], Place("http://v/4"), dedupe=strict
    )
    assert cut.duplicate_of is None  # half the frames: not within 100%/100%


def test_the_same_content_at_the_same_place_again_changes_only_its_last_seen(
    store: Store,
) -> None:
    record = _signals("same", pdq=_hex())
    once = record_content(store, record, [], Place("http://s.example/x", page_url="http://p/"))
    again = record_content(store, record, [], Place("http://s.example/x", page_url="http://p/"))
    elsewhere = record_content(store, record, [], Place("http://t.example/x"))
    assert once.created and not again.created and again.item_id == once.item_id
    assert (once.new_place, again.new_place, elsewhere.new_place) == (True, False, True)
    with store.session() as s:
        item = s.get(Item, once.item_id)
        assert item is not None and item.times_seen == 2
        assert len(s.scalars(select(ItemPlace)).all()) == 2
        actions = sorted(
            s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "item"))
        )
    assert actions == ["item.create", "item.place", "item.place"]
