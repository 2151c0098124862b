"""A derived PDQ view counts its distance plus its margin (31 less its cap, `view_rank`) against
the stricter of its bank's threshold and PDQ's default (31): a bank loosened for recall loosens
its original hash only, and the original hash's match outranks a derived view's at the same
distance (real store, SQLite and PostgreSQL)."""

from __future__ import annotations

import random

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.matcher import Matcher
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import (
    DIHEDRAL_VIEW_THRESHOLD,
    UNCROP_VIEW_THRESHOLD,
    UNPAD_VIEW_THRESHOLD,
    WEAK_VIEW_THRESHOLD,
    PdqSignal,
)
from childguard.store.db import Store

# A hash that does not repeat itself (`signals.pdq.repeats_itself`), as a photo's does.
LISTED = f"{random.Random(31).getrandbits(256):064x}"


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
    assert variants(_record(far, {"region0": flip_bits(LISTED, 31, 4)})) == [("region0", 31)]
    # A bank stricter than 31 is strict for its views too, by as many bits as for the original.
    create_bank(store, "strict", "known-abuse", pdq_threshold=20, actor="t")
    import_records(store, "strict", [EntryRecord("pdq", flip_bits(LISTED, 100, 5))], actor="t")
    matcher.refresh()
    strict = flip_bits(LISTED, 100, 5)
    assert variants(_record(far, {"region0": flip_bits(strict, 25, 6)})) == []
    assert variants(_record(far, {"region0": flip_bits(strict, 20, 7)})) == [("region0", 20)]
    margin = 31 - UNPAD_VIEW_THRESHOLD
    assert variants(_record(far, {"unpadded": flip_bits(strict, 20 - margin + 1, 8)})) == []
    assert variants(_record(far, {"unpadded": flip_bits(strict, 20 - margin, 8)})) == [
        ("unpadded", 20 - margin)
    ]


def test_the_views_of_a_weak_query_count_within_10_bits(store: Store) -> None:
    """A query under PDQ's minimum quality is skipped by default; let in (`min_quality=0`), its
    derived views, rotations and flips and padding removed alike, count within 10 bits only."""
    create_bank(store, "ka", "known-abuse", actor="t")
    import_records(store, "ka", [EntryRecord("pdq", LISTED)], actor="t")
    far = flip_bits(LISTED, 120, seed=9)

    def weak(views: dict[str, str]) -> ContentSignals:
        record = ContentSignals(path="q")
        record.set(PdqSignal.name, far, 30)
        record.views = [QueryView(PdqSignal.name, v, 30, name) for name, v in views.items()]
        return record

    turned = {"rot90": flip_bits(LISTED, WEAK_VIEW_THRESHOLD, 1)}
    outcome = Matcher(store, persist=False).match(weak(turned))
    assert outcome.matches == [] and "quality 30" in (outcome.skipped or "")
    matcher = Matcher(store, persist=False, min_quality=0)

    def variants(views: dict[str, str]) -> list[tuple[str, int]]:
        return [(m.variant, m.distance) for m in matcher.match(weak(views)).matches]

    assert variants(turned) == [("rot90", WEAK_VIEW_THRESHOLD)]
    assert variants({"rot90": flip_bits(LISTED, WEAK_VIEW_THRESHOLD + 1, 2)}) == []
    assert variants({"flipx": flip_bits(LISTED, 16, 3)}) == []
    assert variants({"trimmed": flip_bits(LISTED, 24, 4)}) == []
    assert variants({"trimmed": flip_bits(LISTED, 8, 4)}) == [("trimmed", 8)]


def test_each_kind_of_view_counts_within_its_own_cap(store: Store) -> None:
    """A distractor's near miss through a rotation (18 bits), a crop undone or solid padding
    removed (28) no longer matches at the default threshold; the same distance through the
    original hash, or through a screenshot's region, still does."""
    create_bank(store, "caps", "known-abuse", actor="t")
    import_records(store, "caps", [EntryRecord("pdq", LISTED)], actor="t")
    matcher = Matcher(store, persist=False)
    far = flip_bits(LISTED, 120, seed=9)

    def variants(original: str, views: dict[str, str]) -> list[tuple[str, int]]:
        return [(m.variant, m.distance) for m in matcher.match(_record(original, views)).matches]

    for variant, cap in (
        ("flip_plus1", DIHEDRAL_VIEW_THRESHOLD),
        ("uncropped13", UNCROP_VIEW_THRESHOLD),
        ("unpadded", UNPAD_VIEW_THRESHOLD),
    ):
        assert variants(far, {variant: flip_bits(LISTED, cap + 1, 11)}) == []
        assert variants(far, {variant: flip_bits(LISTED, cap, 12)}) == [(variant, cap)]
    assert variants(flip_bits(LISTED, 28, 13), {}) == [("original", 28)]
    assert variants(far, {"region1": flip_bits(LISTED, 28, 14)}) == [("region1", 28)]


def test_the_original_hash_match_comes_before_a_closer_derived_view_match(store: Store) -> None:
    """A query whose original hash is 20 bits from one listed photo and whose mirrored view is
    16 bits from another (a look-alike once mirrored): the original's match comes first, as the
    mirrored view counts 16 + 7 bits. Each entry reports its best-ranked view."""
    other = flip_bits(LISTED, 128, seed=21)
    create_bank(store, "pair", "known-abuse", actor="t")
    import_records(
        store, "pair", [EntryRecord("pdq", LISTED), EntryRecord("pdq", other)], actor="t"
    )
    matcher = Matcher(store, persist=False)
    original = flip_bits(LISTED, 20, 22)
    views = {"flipy": flip_bits(other, 16, 23)}
    matches = matcher.match(_record(original, views)).matches
    assert [(m.value, m.variant, m.distance) for m in matches] == [
        (LISTED, "original", 20),
        (other, "flipy", 16),
    ]
    # For one entry, the original at 20 bits is kept over a rotation at 16 (rank 23).
    matches = matcher.match(_record(original, {"rot90": flip_bits(LISTED, 16, 24)})).matches
    assert [(m.value, m.variant, m.distance) for m in matches] == [(LISTED, "original", 20)]
