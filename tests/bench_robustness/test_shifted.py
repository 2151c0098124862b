"""The off-centre crop measurement: the grown views undo a crop taken from one side, and the
candidate views count as the matcher would count a derived view (within the cap, at its rank)."""

from __future__ import annotations

import numpy as np
from bench.robustness.shifted import CANDIDATES, Query, _answer, _cell, grown

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


def test_the_split_that_matches_the_crop_undoes_it_better_than_the_centred_guess() -> None:
    px = blocks_photo(5)
    h, w = px.shape[:2]
    cut = np.ascontiguousarray(px[: h - 8, : w - 10])  # 2.6% taken off the right and bottom
    one_sided = grown(cut, 0.026, 0.0, 0.0)
    centred = grown(cut, 0.026, 0.5, 0.5)
    assert _distance(one_sided, px) < _distance(centred, px)


def _query(registered: bool, shipped: int, nearest: int, right: int) -> Query:
    return Query(
        registered,
        "general",
        "crop5-off",
        False,
        False,
        [right] * len(CANDIDATES),
        [nearest] * len(CANDIDATES),
        shipped,
        False,
        257,
        False,
    )


def test_a_candidate_counts_within_its_cap_at_the_rank_of_a_derived_view() -> None:
    q = _query(True, 257, nearest=20, right=20)
    assert _answer(q, [0], 27) == (24, True)  # 20 bits + (31 - 27)
    assert _answer(q, [0], 20) == (31, True)
    assert _answer(q, [0], 19) == (257, False)  # beyond the cap: not counted
    assert _answer(q, [], 27) == (257, False)  # no candidate views: the shipped answer
    wrong = _query(True, 257, nearest=18, right=25)  # nearer another photo than its own
    assert _answer(wrong, [0], 27) == (22, False)


def test_a_cell_counts_the_found_and_the_strict_recall() -> None:
    rows = [_query(True, 257, 10, 10), _query(True, 257, 25, 25), _query(False, 257, 12, 12)]
    answers = [_answer(q, [0], 27) for q in rows]
    # Found at the default: both registered; at precision >= 99.99% only the one ranked above
    # the distractor (14 < 16 < 29).
    assert _cell(rows, answers) == "2/2 (50%)"
