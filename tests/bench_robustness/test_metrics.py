"""Recall at fixed precision and the per-cell summary."""

from __future__ import annotations

from bench.robustness.metrics import Outcome, overall_fpr, recall_at_precision, summarise


def test_recall_at_precision_stops_before_first_negative() -> None:
    scored = [(10.0, True), (9.0, True), (8.0, False), (7.0, True)]
    assert recall_at_precision(scored, 4) == 0.5


def test_recall_at_precision_ties_are_taken_together() -> None:
    assert recall_at_precision([(5.0, True), (5.0, False)], 1) == 0.0
    assert recall_at_precision([(5.0, True), (4.0, False)], 1) == 1.0


def test_recall_at_precision_with_no_positives() -> None:
    assert recall_at_precision([(1.0, False)], 0) == 0.0


def _o(registered: bool, correct: bool, match: bool, score: float) -> Outcome:
    return Outcome("m", "t", "g", registered, correct, match, score, 1.0, 2.0)


def test_summarise_counts_wrong_photo_as_false_positive() -> None:
    rows = [
        _o(True, True, True, 9),
        _o(True, False, True, 8),
        _o(False, False, False, 1),
        _o(False, False, True, 3),
    ]
    cell = summarise(rows)[("m", "t", "g")]
    assert cell.recall == 0.5
    assert cell.fpr == 0.5
    assert cell.false_positives == 2
    assert cell.recall_at_precision == 0.5
    assert overall_fpr(rows)[("m", "g")] == (2, 2)
