"""The view dump's simulation answers as the harness's known-abuse method: the best-ranked view
within its cap names the photo, minus its rank is the score."""

from __future__ import annotations

import numpy as np
from bench.robustness.corpus import Photo
from bench.robustness.views import product_rule, query_row, simulate

from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_VIEW_THRESHOLD,
    hexes_to_array,
    pdq_from_pixels,
    repeats_itself,
)
from sample_media import blocks_photo


def _row(views: list[list[object]], *, registered: bool = True) -> dict[str, object]:
    return {
        "query": "p",
        "group": "astro",
        "registered": registered,
        "transform": "resize0.25",
        "pdq": ["p", 20, 80, 20],
        "views": views,
    }


def test_the_original_outranks_a_closer_mirrored_look_alike() -> None:
    rows = [
        _row(
            [
                ["original", 80, "p", 20, 20, 0],
                ["flipy", 80, "q", 16, 90, 40],
                ["uncropped13", 80, "q", 28, 90, 30],
            ]
        )
    ]
    pdq, ka = simulate(iter(rows), {"ka": product_rule})
    assert (pdq.method, pdq.answer, pdq.score, pdq.correct) == ("pdq", "p", -20.0, True)
    assert (ka.answer, ka.score, ka.correct, ka.match) == ("p", -20.0, True, True)
    assert 16 + DEFAULT_THRESHOLD - DIHEDRAL_VIEW_THRESHOLD > 20


def test_a_view_beyond_its_cap_does_not_count() -> None:
    rows = [
        _row(
            [["original", 80, "p", 60, 60, 0], ["uncropped27", 80, "q", 28, 90, 30]],
            registered=False,
        )
    ]
    _pdq, ka = simulate(iter(rows), {"ka": product_rule})
    assert (ka.answer, ka.score, ka.match) == ("p", -60.0, False)
    rows[0]["views"] = [["original", 80, "p", 60, 60, 0], ["region0", 80, "q", 28, 90, 30]]
    _pdq, ka = simulate(iter(rows), {"ka": product_rule})
    assert (ka.answer, ka.score, ka.match) == ("q", -28.0, True)


def test_a_dumped_derived_view_is_never_near_a_repeating_photo() -> None:
    """The dump records, for a derived view, its nearest photo among those it may match
    (`signals.pdq.view_may_match`), so `simulate` answers as the harness: a bare photo's copy
    turned half round lands near it through the original hash only."""
    y, x = np.mgrid[0:256, 0:256]
    grey = np.where((y - 70) ** 2 + (x - 100) ** 2 < 144, 200, 5).astype(np.uint8)
    bare = np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))
    other = blocks_photo(8)
    bank = [pdq_from_pixels(bare)[0], pdq_from_pixels(other)[0]]
    assert repeats_itself(bank[0])
    photo = Photo("bare", "astro", "pkg", "1", "p.png", "GPL-2+", "0" * 64)
    for pixels, turned in ((bare, False), (np.ascontiguousarray(bare[::-1, ::-1]), True)):
        row = query_row(photo, True, "rot180", pixels, ["bare", "other"], hexes_to_array(bank))
        views = {str(v[0]): v for v in row["views"]}  # type: ignore[attr-defined]
        if not turned:
            assert views["original"][2:4] == ["bare", 0]
        assert all(v[2] == "other" for name, v in views.items() if name != "original")
    # The turned copy's half-turn view is still recorded as near its own photo.
    assert views["rot180"][4] <= 10 < views["original"][4]
