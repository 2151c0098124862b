"""An entry whose hash repeats itself (`signals.pdq.repeats_itself`, what PDQ gives a photo with
next to no structure) matches a query's original hash only: a derived view, a rotation, flip or
crop undone, never matches it, and the query's other entries are still found (real store,
SQLite and PostgreSQL). `repeating` agrees with a plain reference over random and built hashes."""

from __future__ import annotations

import random

import pytest

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.matcher import Matcher
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import (
    REPEAT_DISAGREEMENT,
    REPEAT_SHIFTS,
    PdqSignal,
    hexes_to_array,
    repeating,
    repeats_itself,
    view_may_match,
)
from childguard.store.db import Store
from pdq_bits import flip

# The PDQ hash of stellarium's M102 nebula (quality 34): four rows, repeated four times.
NEBULA = "cccd999933326666cccc999933336666cccc999933336666cccc999933336666"
PHOTO = f"{random.Random(7).getrandbits(256):064x}"


def flip_bits(value: str, n: int, seed: int) -> str:
    return flip(value, n, random.Random(seed))


def reference_closest(value: str) -> float:
    """The smallest share of disagreeing bits between the hash's 16 x 16 grid and itself shifted
    by 1 to REPEAT_SHIFTS rows or columns, bit by bit."""
    bits = f"{int(value, 16):0256b}"
    grid = [[bits[16 * r + c] == "1" for c in range(16)] for r in range(16)]
    closest = 1.0
    for s in range(1, REPEAT_SHIFTS + 1):
        rows = sum(grid[r][c] != grid[r + s][c] for r in range(16 - s) for c in range(16))
        cols = sum(grid[r][c] != grid[r][c + s] for r in range(16) for c in range(16 - s))
        closest = min(closest, rows / ((16 - s) * 16), cols / ((16 - s) * 16))
    return closest


def test_repeating_agrees_with_the_reference() -> None:
    rng = random.Random(3)
    values = [f"{rng.getrandbits(256):064x}" for _ in range(300)]
    # Built repeats, and the same with bits flipped up to past the limit.
    values += [NEBULA, "a5" * 32, "f" * 16 + "0" * 16 + "a5" * 16, "9999666666669999" * 4]
    values += [flip_bits(NEBULA, n, seed=n) for n in range(0, 40, 2)]
    got = repeating(hexes_to_array(values))
    want = [reference_closest(v) <= REPEAT_DISAGREEMENT for v in values]
    assert got.tolist() == want
    assert repeats_itself(NEBULA) and repeats_itself("a5" * 32)
    assert not any(got[:300]), "a random hash overlaps itself at about half its bits"
    assert True in want[304:] and False in want[304:], "the flipped nebulae cross the limit"


def test_view_may_match() -> None:
    assert view_may_match("original", NEBULA)
    for variant in ("rot90", "flipx", "uncropped13", "unpadded", "region0", "cell0"):
        assert not view_may_match(variant, NEBULA)
        assert view_may_match(variant, PHOTO)


def _record(original: str, views: dict[str, str]) -> ContentSignals:
    record = ContentSignals(path="q")
    record.set(PdqSignal.name, original, 100)
    record.views = [QueryView(PdqSignal.name, v, 100, name) for name, v in views.items()]
    return record


@pytest.mark.parametrize("variant", ["rot180", "uncropped13", "region0"])
def test_a_derived_view_never_matches_a_repeating_entry(store: Store, variant: str) -> None:
    create_bank(store, "ka", "known-abuse", actor="t")
    import_records(store, "ka", [EntryRecord("pdq", NEBULA), EntryRecord("pdq", PHOTO)], actor="t")
    matcher = Matcher(store, persist=False)
    far = flip_bits(PHOTO, 128, seed=9)
    assert PdqSignal.distance(far, NEBULA) > 31

    def found(original: str, views: dict[str, str]) -> list[tuple[str, str, int]]:
        return [
            (m.value, m.variant, m.distance)
            for m in matcher.match(_record(original, views)).matches
        ]

    # The original hash matches the repeating entry as any other.
    assert found(flip_bits(NEBULA, 6, 1), {}) == [(NEBULA, "original", 6)]
    # A derived view 2 bits from it does not; the same view 2 bits from a photo does.
    assert found(far, {variant: flip_bits(NEBULA, 2, 2)}) == []
    assert found(far, {variant: flip_bits(PHOTO, 2, 3)}) == [(PHOTO, variant, 2)]
    # A query whose views land near both: only the photo is reported.
    views = {variant: flip_bits(NEBULA, 1, 4), "flipx": flip_bits(PHOTO, 12, 5)}
    assert found(far, views) == [(PHOTO, "flipx", 12)]
