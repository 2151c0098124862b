"""The totals of a scan, counted from its report files (resumed runs included)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from childguard.scan.files import iter_jsonl


@dataclass
class ScanSummary:
    """Totals of a scan (over everything in the report folder, resumed runs included)."""

    roots: list[str]
    started_at: str
    finished_at: str = ""
    files: int = 0
    hashed: int = 0
    failed: int = 0
    matched_files: int = 0
    skipped_resume: int = 0
    skipped_not_media: int = 0
    suppressed_files: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_bank: dict[str, int] = field(default_factory=dict)
    by_error: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def category_of(match: dict[str, Any]) -> str:
    label = match.get("classification_label")
    if label is None:
        return f"{match.get('bank_kind')}:unclassified"
    return f"{match.get('classification_scheme') or 'label'}:{label}"


def summarise(summary: ScanSummary, hashes_path: Path, matches_path: Path) -> None:
    errors: Counter[str] = Counter()
    for rec in iter_jsonl(hashes_path):
        summary.files += 1
        if rec.get("error"):
            summary.failed += 1
            errors[str(rec["error"]).split(":", 1)[0]] += 1
        else:
            summary.hashed += 1
    categories: Counter[str] = Counter()
    banks: Counter[str] = Counter()
    # A file re-matched after a crash between its match line and its checkpoint line has two
    # match lines: the last one counts.
    latest = {line.get("path"): line for line in iter_jsonl(matches_path)}
    for line in latest.values():
        matches = line.get("matches") or []
        if matches:
            summary.matched_files += 1
            best = min(matches, key=lambda m: m.get("distance", 0))
            categories[category_of(best)] += 1
            for bank in {m["bank_name"] for m in matches}:
                banks[bank] += 1
        elif line.get("suppressed"):
            summary.suppressed_files += 1
    summary.by_category = dict(categories.most_common())
    summary.by_bank = dict(banks.most_common())
    summary.by_error = dict(errors.most_common())
