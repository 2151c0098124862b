# Owns the `scan` command.
"""`childguard scan`: the bulk review of a seized disk or an archive, with an HTML report and a
VICS JSON export of the matched media."""

from __future__ import annotations

from pathlib import Path

import typer

from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_PARTIAL, app
from childguard.cli.common import (
    ArchivesOption,
    DbOption,
    ProgressOption,
    WorkersOption,
    fail,
    out,
    require_paths,
    store_or_exit,
    want_progress,
)
from childguard.cli.output import plain_table


@app.command("scan")
def scan_cmd(
    roots: list[Path] = typer.Argument(
        ..., help="Folders or files to scan (zip archives included)."
    ),
    report: Path = typer.Option(..., "--report", help="Folder for the report files."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a scan into the same report folder, skipping done files."
    ),
    dihedral: bool | None = typer.Option(
        None,
        "--dihedral/--no-dihedral",
        help="Match rotated and flipped copies against every bank (default: known-abuse and "
        "allow banks only); --no-dihedral: against none.",
    ),
    robust: bool = typer.Option(
        True,
        "--robust/--plain",
        help="Search robust views too, and verify protected photos by their features.",
    ),
    archives: bool = ArchivesOption,
    min_quality: int | None = typer.Option(
        None, "--min-quality", help="Perceptual hash quality floor (default: PDQ's 50)."
    ),
    workers: int | None = WorkersOption,
    progress: bool | None = ProgressOption,
    db: str | None = DbOption,
) -> None:
    """Hash and match every file under ROOTS; write summary.json, matches.jsonl, report.html and
    vics*.json into --report.

    Exit code: 0 nothing matched, 3 matches found, 1 some files failed (and nothing matched),
    2 usage error.
    """
    from childguard.matcher import Matcher
    from childguard.scan import ScanOptions, run_scan

    require_paths(roots)
    if report.exists() and not report.is_dir():
        raise fail(f"--report {report} exists and is not a folder")
    with store_or_exit(db) as store:
        matcher = Matcher(store, min_quality=min_quality, dihedral=dihedral)
        summary = run_scan(
            ScanOptions(
                roots=roots,
                report_dir=report,
                resume=resume,
                workers=workers,
                robust=robust,
                dihedral=dihedral,
                archives=archives,
                progress=want_progress(progress),
            ),
            matcher,
        )
    table = plain_table("", "count")
    for label, value in (
        ("files", summary.files),
        ("hashed", summary.hashed),
        ("failed", summary.failed),
        ("matched files", summary.matched_files),
        ("suppressed (allow banks)", summary.suppressed_files),
        ("skipped (resume)", summary.skipped_resume),
        ("skipped (not images or videos)", summary.skipped_not_media),
    ):
        table.add_row(label, str(value))
    for category, n in summary.by_category.items():
        table.add_row(f"category {category}", str(n))
    out.print(table)
    out.print(f"report: {report / 'report.html'}")
    if summary.matched_files:
        raise typer.Exit(EXIT_FOUND)
    raise typer.Exit(EXIT_PARTIAL if summary.failed else EXIT_OK)
