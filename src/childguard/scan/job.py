"""The scan job: walk (zip members included), send everything down the pipeline (hash on every
core, match in batches), and keep durable progress in the report folder so that an interrupted
scan resumes where it stopped.

Files that are not images or videos (by name and first bytes) are skipped and counted
(`skipped_not_media`), not hashed.

Files written to the report folder (see `childguard.scan.files`):
- `hashes.jsonl`: one hash record per file (the checkpoint; `--resume` skips paths in it);
- `matches.jsonl`: one line per matched file, with its matches (provenance and classification);
- `summary.json`, `report.html`, `vics*.json`: written at the end from the two files above.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from childguard.log import get_logger
from childguard.matcher import Matcher, MatchOutcome
from childguard.pipeline import Pipeline, iter_files
from childguard.scan.files import HASHES, MATCHES, done_paths
from childguard.scan.report import write_html_report, write_vics_exports
from childguard.scan.summary import ScanSummary, summarise
from childguard.signals.content import ContentSignals

log = get_logger(__name__)
BATCH = 128


@dataclass(frozen=True)
class ScanOptions:
    roots: list[Path]
    report_dir: Path
    resume: bool = False
    workers: int | None = None
    robust: bool = True
    dihedral: bool | None = None
    archives: bool = True
    progress: bool = False


def _match_line(record: ContentSignals, outcome: MatchOutcome) -> dict[str, Any]:
    row = {k: v for k, v in record.to_dict().items() if k != "error"}
    row["matches"] = [m.to_dict() for m in outcome.matches]
    row["suppressed"] = [m.to_dict() for m in outcome.suppressed]
    return row


def run_scan(
    options: ScanOptions,
    matcher: Matcher,
    *,
    on_record: Callable[[ContentSignals, MatchOutcome], None] | None = None,
) -> ScanSummary:
    """Scan `options.roots` into `options.report_dir`; returns the summary (also written)."""
    out = options.report_dir
    out.mkdir(parents=True, exist_ok=True)
    hashes_path, matches_path = out / HASHES, out / MATCHES
    if not options.resume:
        for name in (HASHES, MATCHES):
            (out / name).unlink(missing_ok=True)
    done = done_paths(hashes_path) if options.resume else set()
    summary = ScanSummary(
        roots=[str(r) for r in options.roots], started_at=datetime.now(UTC).isoformat()
    )
    not_media: list[str] = []
    sources = iter_files(
        options.roots,
        include_archives=options.archives,
        on_skip=lambda path, _why: not_media.append(path),
    )
    todo = (s for s in sources if s.path not in done)
    summary.skipped_resume = len(done)
    pipeline = Pipeline(
        matcher,
        robust=options.robust,
        dihedral=bool(options.dihedral) or (options.dihedral is None and not options.robust),
        workers=options.workers,
        progress=options.progress,
        batch_size=BATCH,
    )
    with (
        hashes_path.open("a", encoding="utf-8") as hfh,
        matches_path.open("a", encoding="utf-8") as mfh,
    ):

        def record_matches(record: ContentSignals, outcome: MatchOutcome) -> None:
            if outcome.matches or outcome.suppressed:
                mfh.write(json.dumps(_match_line(record, outcome), default=str) + "\n")
                mfh.flush()

        def checkpoint(record: ContentSignals, outcome: MatchOutcome) -> None:
            # After the file's matches, so a resumed scan never loses one.
            hfh.write(json.dumps(record.to_dict()) + "\n")

        actions = [record_matches] + ([on_record] if on_record else []) + [checkpoint]
        for _ in pipeline.run(todo, actions):
            pass
    summarise(summary, hashes_path, matches_path)
    summary.skipped_not_media = len(not_media)
    summary.finished_at = datetime.now(UTC).isoformat()
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    write_html_report(out, summary)
    write_vics_exports(out)
    log.info("scan.done", files=summary.files, matched=summary.matched_files, failed=summary.failed)
    return summary
