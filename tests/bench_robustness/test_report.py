"""Issue 19's targets as the report states them: MET / NOT MET per group and per target."""

from __future__ import annotations

from bench.robustness.metrics import Cell, Outcome
from bench.robustness.run import FPR_QUERIES, fpr_counts, fpr_markdown, targets


def _cell(recall: float, strict: float | None = None, match_ms: float = 10.0) -> Cell:
    return Cell(
        n_registered=100,
        n_distractors=100,
        recall=recall,
        fpr=0.0,
        false_positives=0,
        recall_at_precision=recall if strict is None else strict,
        hash_ms=20.0,
        match_ms=match_ms,
    )


PROT, KA = "childguard-protected", "childguard-known-abuse"


def _line(text: str, *words: str) -> str:
    return next(line for line in text.splitlines() if all(w in line for w in words))


def test_protected_targets_per_kind_of_transform() -> None:
    cells = {
        (PROT, "jpeg50", "g"): _cell(0.96),
        (PROT, "rot+10", "g"): _cell(0.94),  # issue 19: 95% on every single transform
        (PROT, "mirror+grey+crop15", "g"): _cell(0.95),
        (PROT, "grid3x3", "g"): _cell(0.91),
        (PROT, "grid4x4-gutter", "g"): _cell(0.79),
    }
    text = targets(cells, {(PROT, "g"): (0, 1000)}, ["g"], [t for _m, t, _g in cells])
    assert "**NOT MET** (rot+10 94.0 < 95)" in _line(text, "single transform")
    assert "**MET**" in _line(text, "every chain")
    assert "**MET**" in _line(text, "up to 3x3")
    assert "**NOT MET** (grid4x4-gutter 79.0 < 80)" in _line(text, "4x4 grids")
    assert "not resolved here" in _line(text, "protected FPR")
    assert "**MET** (10.0 ms mean;" in _line(text, "ms a query")


def test_protected_fpr_and_cost_verdicts() -> None:
    cells = {(PROT, "jpeg50", "g"): _cell(1.0, match_ms=45.0), ("pdq", "jpeg50", "g"): _cell(0.5)}
    n = FPR_QUERIES
    ok = targets(cells, {(PROT, "g"): (5, n)}, ["g"], ["jpeg50"])
    assert "**MET** (5 / 50,000)" in _line(ok, "protected FPR")
    assert "**NOT MET** (45.0 ms mean, 2.2x reference PDQ's hashing;" in _line(ok, "ms a query")
    bad = targets(cells, {(PROT, "g"): (6, n)}, ["g"], ["jpeg50"])
    assert "**NOT MET** (6 / 50,000)" in _line(bad, "protected FPR")
    early = targets(cells, {(PROT, "g"): (3, 10_000)}, ["g"], ["jpeg50"])
    assert "NOT MET** already" in _line(early, "protected FPR")


def test_known_abuse_targets_and_reference_comparison() -> None:
    names = ["hflip", "rot90", "pad20", "captions", "screenshot", "crop5", "jpeg50"]
    cells = {(KA, t, "g"): _cell(0.96) for t in names}
    cells |= {("pdq", t, "g"): _cell(0.10) for t in names}
    cells[(KA, "captions", "g")] = _cell(0.85)
    cells[(KA, "crop5", "g")] = _cell(0.05, strict=0.02)
    cells[("pdq", "crop5", "g")] = _cell(0.07, strict=0.07)
    fpr = {(KA, "g"): (4, 700), ("pdq", "g"): (1, 700)}
    text = targets(cells, fpr, ["g"], names)
    never = _line(text, "never worse")
    assert "default threshold: **NOT MET** (crop5 5.0 < 7.0)" in never
    assert "99.99%: **NOT MET** (crop5 2.0 < 7.0)" in never
    assert "**MET**" in _line(text, "mirror and 90")
    assert "**NOT MET** (captions 85.0 < 90)" in _line(text, "caption bars")
    assert "**NOT MET** (crop5 5.0 < 50)" in _line(text, "5% crops")
    assert "4 / 700 (reference PDQ 1 / 700)" in _line(text, "known-abuse false positives")


def _o(method: str, match: bool, group: str = "g") -> Outcome:
    return Outcome(method, "jpeg50", group, False, False, match, 1.0, 2.0, 3.0, "q1", "p1")


def test_fpr_report() -> None:
    outcomes = (
        [_o(PROT, False)] * 59_996
        + [_o(PROT, True)] * 4
        + [_o(KA, False)] * 59_990
        + [_o(KA, True)] * 10
        + [_o("pdq", False)] * 59_998
        + [_o("pdq", True)] * 2
        + [_o(PROT, True, "h")] * 2
        + [_o(PROT, False, "h")] * 998
    )
    counts = fpr_counts(outcomes)
    assert counts[(PROT, "g")][:2] == (4, 60_000)
    meta = {
        "transforms": ["jpeg50"],
        "distractors": {"g": 10, "h": 1},
        "tiles": {"g": 5, "h": 0},
        "bank": 3,
        "elapsed_s": 1.0,
        "cpus": 2,
        "workers": 2,
        "load_start": 0.1,
        "load_end": 0.2,
    }
    text = fpr_markdown(meta, [o for o in outcomes if o.match], counts)
    assert "**MET** (4 / 60,000)" in _line(text, "`g` protected FPR")
    assert "**NOT MET** (2 / 1,000; only 1,000 queries)" in _line(text, "`h` protected FPR")
    assert "10 / 60,000 against reference PDQ's 2 / 60,000" in _line(text, "`g` known-abuse FPR")
    assert "`prot` g: `q1` (jpeg50) -> `p1`" in text
