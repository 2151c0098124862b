# Owns the `scan` command.
"""`childguard scan`: the bulk review of a seized disk or an archive, with an HTML report and a
VICS JSON export of the matched media, on this machine or on a Dask cluster (`--cluster`)."""

from __future__ import annotations

from pathlib import Path

import typer

from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_PARTIAL, app
from childguard.cli.common import (
    ArchivesOption,
    DbOption,
    ProgressOption,
    WorkersOption,
    err,
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
        None, help="Folders or files to scan (zip archives included)."
    ),
    report: Path = typer.Option(..., "--report", help="Folder for the report files."),
    from_list: Path | None = typer.Option(
        None,
        "--from-list",
        metavar="FILE",
        help="Also scan the paths and http(s) URLs listed in FILE, one a line (# comments).",
    ),
    cluster: str | None = typer.Option(
        None,
        "--cluster",
        metavar="local|tcp://HOST:PORT",
        help="Hash and search on a Dask cluster: `local` starts one here (one worker per core, "
        "or -j), tcp://HOST:PORT uses a running scheduler. The report is the same.",
    ),
    ship_index: bool | None = typer.Option(
        None,
        "--ship-index/--shared-index",
        help="With --cluster: send the index to every worker (default for tcp://), or let "
        "workers read it at this machine's path (a shared disk; default for local).",
    ),
    allow_private: bool = typer.Option(
        False,
        "--allow-private",
        help="Fetch listed URLs on private and loopback addresses (tests and demos only).",
    ),
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
    """Hash and match every file under ROOTS (and in --from-list); write summary.json,
    matches.jsonl, report.html and vics*.json into --report.

    Exit code: 0 nothing matched, 3 matches found, 1 some files failed (and nothing matched),
    2 usage error.
    """
    from childguard.matcher import Matcher
    from childguard.scan import ScanOptions, run_scan

    roots = list(roots or [])
    if not roots and from_list is None:
        raise fail("give folders or files to scan, or --from-list FILE")
    require_paths(roots)
    if from_list is not None:
        require_paths([from_list])
    if report.exists() and not report.is_dir():
        raise fail(f"--report {report} exists and is not a folder")
    spec = None
    if cluster is not None:
        from childguard.scale import ClusterError, parse_cluster

        try:
            spec = parse_cluster(cluster)
        except ClusterError as exc:
            raise fail(str(exc)) from None
    elif ship_index is not None:
        raise fail("--ship-index/--shared-index go with --cluster")
    options = ScanOptions(
        roots=roots,
        report_dir=report,
        resume=resume,
        workers=workers,
        robust=robust,
        dihedral=dihedral,
        archives=archives,
        progress=want_progress(progress),
        from_list=from_list,
        allow_private=allow_private,
    )
    with store_or_exit(db) as store:
        if spec is None:
            summary = run_scan(options, Matcher(store, min_quality=min_quality, dihedral=dihedral))
        else:
            from childguard.scale import ClusterError, cluster_scan

            # Memory-mapped: the client holds the index only to hand it to the workers.
            matcher = Matcher(store, min_quality=min_quality, dihedral=dihedral, mmap=True)
            try:
                summary = cluster_scan(
                    options,
                    matcher,
                    spec,
                    ship_index=ship_index,
                    workers=workers,
                    on_dashboard=lambda link: err.print(f"dashboard: {link}"),
                )
            except ClusterError as exc:
                raise fail(str(exc)) from None
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
