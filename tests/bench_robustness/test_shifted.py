"""The off-centre crop measurement: the grown views undo a crop taken from one side, and the
candidate views count as the matcher would count a derived view (within the cap, at its rank),
the shipped views as the product counts them."""

from __future__ import annotations

import numpy as np
from bench.robustness.shifted import CANDIDATES, candidates, grown, rule, variant
from bench.robustness.views import product_rule

from childguard.signals.pdq import hamming_many, hexes_to_array, pdq_from_pixels
from sample_media import blocks_photo


def _distance(a: np.ndarray, b: np.ndarray) -> int:
    ha, hb = pdq_from_pixels(np.ascontiguousarray(a))[0], pdq_from_pixels(b)[0]
    return int(hamming_many(hexes_to_array([ha])[0], hexes_to_array([hb]))[0])


def test_grown_adds_the_share_on_the_sides_the_split_says() -> None:
    px = blocks_photo(3)
    out = grown(px, 0.05, 0.0, 1.0)  # all of the width on the right, all of the height on top
    assert out.shape == (300 + 15, 400 + 20, 3)
    assert np.array_equal(out[15:, :400], px)
    assert np.array_equal(out[14, :400], px[0])  # the border mirrors the edge
    assert len(CANDIDATES) == 16 and (0.026, 0.5, 0.5) not in CANDIDATES
    views = candidates(px)
    assert [v for v, _, _ in views] == [variant(*c) for c in CANDIDATES]
    assert len({h for _, h, _ in views}) == 16


def test_the_split_that_matches_the_crop_undoes_it_better_than_the_centred_guess() -> None:
    px = blocks_photo(5)
    h, w = px.shape[:2]
    cut = np.ascontiguousarray(px[: h - 8, : w - 10])  # 2.6% taken off the right and bottom
    one_sided = grown(cut, 0.026, 0.0, 0.0)
    centred = grown(cut, 0.026, 0.5, 0.5)
    assert _distance(one_sided, px) < _distance(centred, px)


def test_a_candidate_counts_within_its_cap_at_the_rank_of_a_derived_view() -> None:
    chosen = CANDIDATES[:2]
    inside, outside = variant(*CANDIDATES[0]), variant(*CANDIDATES[5])
    assert rule(chosen, 27)(inside, 100, 20) == 24  # 20 bits + (31 - 27)
    assert rule(chosen, 20)(inside, 100, 20) == 31
    assert rule(chosen, 19)(inside, 100, 20) is None  # beyond the cap
    assert rule(chosen, 27)(outside, 100, 5) is None  # not in the set
    assert rule([], None)(inside, 100, 0) is None  # the baseline has none
    for shipped in (("original", 100, 40), ("uncropped27", 100, 20), ("rot90", 100, 30)):
        assert rule(chosen, 27)(*shipped) == product_rule(*shipped)
