"""The scan job: walk (zip members included), send everything down the pipeline (hash on every
core, match in batches), and keep durable progress in the report folder so that an interrupted
scan resumes where it stopped.

Files that are not images or videos (by name and first bytes) are skipped and counted
(`skipped_not_media`), not hashed.

Files written to the report folder (see `childguard.scan.files`):
- `hashes.jsonl`: one hash record per file (the checkpoint; `--resume` skips paths in it);
- `matches.jsonl`: one line per matched file, with its matches (provenance and classification);
- `summary.json`, `report.html`, `vics*.json`: written at the end from the two files above.

Inputs are the roots (folders, files, zip members) and, with `from_list`, the paths and URLs a
list file names (`childguard.scan.listing`). Every path enters the scan once: a path already
in the checkpoint (`--resume`) or already met in this run is not hashed again.

Hashing and matching run on this machine's process pool (`Pipeline.run`) unless a `runner`
is given: a callable that takes the sources and the pipeline and yields each source's
(record, outcome) in input order (`childguard.scale` runs them on a Dask cluster). Either
way this process alone opens the store and writes the report files, so the report is the
same.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from childguard.log import get_logger
from childguard.matcher import Matcher, MatchOutcome
from childguard.pipeline import Pipeline, Source, iter_files
from childguard.scan.files import HASHES, MATCHES, done_paths, trim_torn_tail
from childguard.scan.listing import iter_list
from childguard.scan.report import write_html_report, write_vics_exports
from childguard.scan.summary import ScanSummary, summarise
from childguard.signals.content import ContentSignals

log = get_logger(__name__)
BATCH = 128

Runner = Callable[[Iterable[Source], Pipeline], Iterable[tuple[ContentSignals, MatchOutcome]]]
"""Hashes and matches sources for `run_scan`, yielding (record, outcome) in input order."""


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
    from_list: Path | None = None
    # Fetch listed URLs on private and loopback addresses too (tests and local demos only).
    allow_private: bool = False


def _match_line(record: ContentSignals, outcome: MatchOutcome) -> dict[str, Any]:
    row = {k: v for k, v in record.to_dict().items() if k != "error"}
    row["matches"] = [m.to_dict() for m in outcome.matches]
    row["suppressed"] = [m.to_dict() for m in outcome.suppressed]
    return row


def scan_sources(
    options: ScanOptions, on_skip: Callable[[str, str], None] | None = None
) -> Iterator[Source]:
    """Every source of a scan: the roots walked, then the entries of the list file."""
    yield from iter_files(options.roots, include_archives=options.archives, on_skip=on_skip)
    if options.from_list is not None:
        yield from iter_list(
            options.from_list,
            include_archives=options.archives,
            on_skip=on_skip,
            allow_private=options.allow_private,
        )


def _once(sources: Iterable[Source], done: set[str]) -> Iterator[Source]:
    """Sources whose path is not in `done` yet (which each one joins)."""
    for source in sources:
        if source.path not in done:
            done.add(source.path)
            yield source


def run_scan(
    options: ScanOptions,
    matcher: Matcher,
    *,
    on_record: Callable[[ContentSignals, MatchOutcome], None] | None = None,
    runner: Runner | None = None,
) -> ScanSummary:
    """Scan `options.roots` (and the list file) into `options.report_dir`; returns the
    summary (also written)."""
    out = options.report_dir
    out.mkdir(parents=True, exist_ok=True)
    hashes_path, matches_path = out / HASHES, out / MATCHES
    for name in (HASHES, MATCHES):
        if options.resume:
            trim_torn_tail(out / name)  # a crash's half-written last line
        else:
            (out / name).unlink(missing_ok=True)
    done = done_paths(hashes_path) if options.resume else set()
    summary = ScanSummary(
        roots=[str(r) for r in options.roots], started_at=datetime.now(UTC).isoformat()
    )
    not_media: set[str] = set()
    summary.skipped_resume = len(done)
    sources = scan_sources(options, on_skip=lambda path, _why: not_media.add(path))
    todo = _once(sources, done)
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
        if runner is None:
            for _ in pipeline.run(todo, actions):
                pass
        else:
            for record, outcome in runner(todo, pipeline):
                for action in actions:
                    action(record, outcome)
    summarise(summary, hashes_path, matches_path)
    summary.skipped_not_media = len(not_media)
    summary.finished_at = datetime.now(UTC).isoformat()
    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2))
    write_html_report(out, summary)
    write_vics_exports(out)
    log.info("scan.done", files=summary.files, matched=summary.matched_files, failed=summary.failed)
    return summary
