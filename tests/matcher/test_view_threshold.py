"""A derived PDQ view counts within the stricter of its bank's threshold and PDQ's default (31):
a bank loosened for recall loosens its original hash only (real store, SQLite and PostgreSQL)."""

from __future__ import annotations

import random

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.matcher import Matcher
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import PdqSignal
from childguard.store.db import Store

LISTED = "f" * 16 + "0" * 16 + "a5" * 16


def flip_bits(value: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    x = int(value, 16)
    for bit in rng.sample(range(256), n):
        x ^= 1 << bit
    return f"{x:064x}"


def _record(original: str, views: dict[str, str]) -> ContentSignals:
    record = ContentSignals(path="q")
    record.set(PdqSignal.name, original, 100)
    record.views = [QueryView(PdqSignal.name, v, 100, name) for name, v in views.items()]
    return record


def test_a_loose_bank_loosens_the_original_but_not_the_views(store: Store) -> None:
    create_bank(store, "loose", "known-abuse", pdq_threshold=52, actor="t")
    import_records(store, "loose", [EntryRecord("pdq", LISTED)], actor="t")
    matcher = Matcher(store, persist=False)
    far = flip_bits(LISTED, 120, seed=9)

    def variants(record: ContentSignals) -> list[tuple[str, int]]:
        return [(m.variant, m.distance) for m in matcher.match(record).matches]

    assert variants(_record(flip_bits(LISTED, 45, 1), {})) == [("original", 45)]
    assert variants(_record(far, {"trimmed": flip_bits(LISTED, 45, 2)})) == []
    assert variants(_record(far, {"rot90": flip_bits(LISTED, 40, 3)})) == []
    assert variants(_record(far, {"trimmed": flip_bits(LISTED, 31, 4)})) == [("trimmed", 31)]
    # A bank stricter than 31 is strict for its views too.
    create_bank(store, "strict", "known-abuse", pdq_threshold=20, actor="t")
    import_records(store, "strict", [EntryRecord("pdq", flip_bits(LISTED, 100, 5))], actor="t")
    matcher.refresh()
    near_strict = flip_bits(flip_bits(LISTED, 100, 5), 25, 6)
    assert variants(_record(far, {"trimmed": near_strict})) == []


def test_the_dihedral_views_of_a_weak_query_count_within_16_bits(store: Store) -> None:
    """A query under PDQ's minimum quality is skipped by default; let in (`min_quality=0`), its
    rotated and mirrored views count within 16 bits only, and its other views within 31."""
    create_bank(store, "ka", "known-abuse", actor="t")
    import_records(store, "ka", [EntryRecord("pdq", LISTED)], actor="t")
    far = flip_bits(LISTED, 120, seed=9)

    def weak(views: dict[str, str]) -> ContentSignals:
        record = ContentSignals(path="q")
        record.set(PdqSignal.name, far, 30)
        record.views = [QueryView(PdqSignal.name, v, 30, name) for name, v in views.items()]
        return record

    turned = {"rot90": flip_bits(LISTED, 16, 1)}
    outcome = Matcher(store, persist=False).match(weak(turned))
    assert outcome.matches == [] and "quality 30" in (outcome.skipped or "")
    matcher = Matcher(store, persist=False, min_quality=0)

    def variants(views: dict[str, str]) -> list[tuple[str, int]]:
        return [(m.variant, m.distance) for m in matcher.match(weak(views)).matches]

    assert variants(turned) == [("rot90", 16)]
    assert variants({"rot90": flip_bits(LISTED, 17, 2)}) == []
    assert variants({"flipx": flip_bits(LISTED, 24, 3)}) == []
    assert variants({"trimmed": flip_bits(LISTED, 24, 4)}) == [("trimmed", 24)]
