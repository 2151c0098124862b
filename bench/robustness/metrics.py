"""Metrics of the robustness benchmark (Thorn's perception protocol, per group).

For each (method, transform, group): recall at the method's default threshold, the
false-positive rate on the transformed distractors at that threshold, and recall at
precision >= 99.99% (the score threshold is chosen from the same run's results).
A registered query only counts as found when the method names the right photo; a
wrong photo counts as a false positive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

TARGET_PRECISION = 0.9999


@dataclass(frozen=True)
class Outcome:
    method: str
    transform: str
    group: str
    registered: bool  # False: the query is a transformed distractor
    correct: bool  # registered and the answer names the right photo
    match: bool  # matched at the default threshold
    score: float
    hash_ms: float
    match_ms: float
    query: str = ""  # the queried photo's (or tile's) id
    answer: str | None = None  # the photo the method named, matched or not


@dataclass
class Cell:
    n_registered: int
    n_distractors: int
    recall: float
    fpr: float
    false_positives: int
    recall_at_precision: float
    hash_ms: float
    match_ms: float


def recall_at_precision(
    scored: list[tuple[float, bool]], n_positive: int, precision: float = TARGET_PRECISION
) -> float:
    """Best recall over score thresholds whose precision is >= `precision`.

    `scored`: (score, is_true_positive) for every answer that could be accepted.
    """
    if n_positive == 0:
        return 0.0
    scored = sorted(scored, key=lambda s: -s[0])
    tp = fp = 0
    best = 0.0
    i = 0
    while i < len(scored):
        score = scored[i][0]
        while i < len(scored) and scored[i][0] == score:  # ties are accepted or refused together
            tp += scored[i][1]
            fp += not scored[i][1]
            i += 1
        if tp and tp / (tp + fp) >= precision:
            best = max(best, tp / n_positive)
    return best


def summarise(outcomes: Iterable[Outcome]) -> dict[tuple[str, str, str], Cell]:
    buckets: dict[tuple[str, str, str], list[Outcome]] = defaultdict(list)
    for o in outcomes:
        buckets[(o.method, o.transform, o.group)].append(o)
    cells: dict[tuple[str, str, str], Cell] = {}
    for key, rows in buckets.items():
        reg = [o for o in rows if o.registered]
        dis = [o for o in rows if not o.registered]
        found = sum(o.correct and o.match for o in reg)
        false_pos = sum(o.match for o in dis) + sum(o.match and not o.correct for o in reg)
        scored = [(o.score, o.correct) for o in reg] + [(o.score, False) for o in dis]
        cells[key] = Cell(
            n_registered=len(reg),
            n_distractors=len(dis),
            recall=found / len(reg) if reg else 0.0,
            fpr=sum(o.match for o in dis) / len(dis) if dis else 0.0,
            false_positives=false_pos,
            recall_at_precision=recall_at_precision(scored, len(reg)),
            hash_ms=sum(o.hash_ms for o in rows) / len(rows),
            match_ms=sum(o.match_ms for o in rows) / len(rows),
        )
    return cells


def overall_fpr(outcomes: Iterable[Outcome]) -> dict[tuple[str, str], tuple[int, int]]:
    """(method, group) -> (false positives, distractor queries) over all transforms."""
    out: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for o in outcomes:
        if not o.registered:
            out[(o.method, o.group)][0] += o.match
            out[(o.method, o.group)][1] += 1
        elif o.match and not o.correct:
            out[(o.method, o.group)][0] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}
