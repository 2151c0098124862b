"""The view dump's simulation answers as the harness's known-abuse method: the best-ranked view
within its cap names the photo, minus its rank is the score."""

from __future__ import annotations

from bench.robustness.views import product_rule, simulate

from childguard.signals.pdq import DEFAULT_THRESHOLD, DIHEDRAL_VIEW_THRESHOLD


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
