"""The scan job: walk (zip members included), hash on every core, match in batches, and keep
durable progress in the report folder so that an interrupted scan resumes where it stopped.

Files written to the report folder:
- `hashes.jsonl`: one hash record per file (the checkpoint; `--resume` skips paths in it);
- `matches.jsonl`: one line per matched file, with its matches (provenance and classification);
- `summary.json`, `report.html`, `vics*.json`: written at the end from the two files above.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from childguard.hashing import HashRecord, hash_many, iter_files
from childguard.log import get_logger
from childguard.matcher import Matcher, MatchOutcome

log = get_logger(__name__)
HASHES = "hashes.jsonl"
MATCHES = "matches.jsonl"
BATCH = 128


@dataclass(frozen=True)
class ScanOptions:
    roots: list[Path]
    report_dir: Path
    resume: bool = False
    workers: int | None = None
    robust: bool = True
    dihedral: bool = False
    archives: bool = True
    progress: bool = False


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
    suppressed_files: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_bank: dict[str, int] = field(default_factory=dict)
    by_error: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _done_paths(path: Path) -> set[str]:
    """Paths already in a checkpoint file; a torn last line (a crash mid-write) is ignored."""
    done: set[str] = set()
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                done.add(json.loads(line)["path"])
            except (ValueError, KeyError, TypeError):
                continue
    return done


def _iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                yield json.loads(line)
            except ValueError:
                continue


def _match_line(record: HashRecord, outcome: MatchOutcome) -> dict[str, Any]:
    return {
        "path": record.path,
        "size": record.size,
        "md5": record.md5,
        "sha1": record.sha1,
        "sha256": record.sha256,
        "pdq": record.pdq,
        "matches": [m.to_dict() for m in outcome.matches],
        "suppressed": [m.to_dict() for m in outcome.suppressed],
    }


def category_of(match: dict[str, Any]) -> str:
    label = match.get("classification_label")
    if label is None:
        return f"{match.get('bank_kind')}:unclassified"
    return f"{match.get('classification_scheme') or 'label'}:{label}"


def run_scan(
    options: ScanOptions,
    matcher: Matcher,
    *,
    on_record: Callable[[HashRecord, MatchOutcome], None] | None = None,
) -> ScanSummary:
    """Scan `options.roots` into `options.report_dir`; returns the summary (also written)."""
    out = options.report_dir
    out.mkdir(parents=True, exist_ok=True)
    hashes_path, matches_path = out / HASHES, out / MATCHES
    if not options.resume:
        for name in (HASHES, MATCHES):
            (out / name).unlink(missing_ok=True)
    done = _done_paths(hashes_path) if options.resume else set()
    summary = ScanSummary(
        roots=[str(r) for r in options.roots], started_at=datetime.now(UTC).isoformat()
    )
    sources = (s for s in iter_files(options.roots, include_archives=options.archives))
    todo = (s for s in sources if s.path not in done)
    summary.skipped_resume = len(done)
    records = hash_many(
        todo,
        workers=options.workers,
        dihedral=options.dihedral,
        robust=options.robust,
        # ORB features only where a protected bank can use them (they cost ~25 ms a file).
        features=options.robust and matcher.needs_features,
        progress=options.progress,
    )
    with (
        hashes_path.open("a", encoding="utf-8") as hfh,
        matches_path.open("a", encoding="utf-8") as mfh,
    ):
        for record, outcome in matcher.match_stream(records, batch_size=BATCH):
            if outcome.matches or outcome.suppressed:
                mfh.write(json.dumps(_match_line(record, outcome), default=str) + "\n")
                mfh.flush()
            if on_record is not None:
                on_record(record, outcome)
            # The checkpoint line goes after the file's matches, so a resumed scan never loses one.
            hfh.write(json.dumps(record.to_dict(dihedral=False)) + "\n")
    _summarise(summary, hashes_path, matches_path)
    summary.finished_at = datetime.now(UTC).isoformat()
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    from childguard.scan.report import write_html_report, write_vics_exports

    write_html_report(out, summary)
    write_vics_exports(out)
    log.info("scan.done", files=summary.files, matched=summary.matched_files, failed=summary.failed)
    return summary


def _summarise(summary: ScanSummary, hashes_path: Path, matches_path: Path) -> None:
    errors: Counter[str] = Counter()
    for rec in _iter_jsonl(hashes_path):
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
    latest = {line.get("path"): line for line in _iter_jsonl(matches_path)}
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
