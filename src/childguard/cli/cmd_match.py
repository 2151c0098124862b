"""`childguard match`: hash files and match them against every enabled bank in one pass."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_PARTIAL, app
from childguard.cli.common import (
    DbOption,
    ProgressOption,
    require_paths,
    store_or_exit,
    want_progress,
)
from childguard.matcher import Matcher
from childguard.pipeline import Pipeline, iter_files

BATCH = 64


@app.command("match")
def match_cmd(
    paths: list[Path] = typer.Argument(..., help="Files or folders (recursive)."),
    as_json: bool = typer.Option(False, "--json", help="JSON Lines, one object per file."),
    dihedral: bool | None = typer.Option(
        None,
        "--dihedral/--no-dihedral",
        help="Match rotated and flipped copies against every bank (default: known-abuse and "
        "allow banks only); --no-dihedral: against none.",
    ),
    robust: bool = typer.Option(
        True,
        "--robust/--plain",
        help="Also search robust views (borders removed, screenshot and collage regions) and "
        "verify protected photos by their features.",
    ),
    min_quality: int | None = typer.Option(
        None,
        "--min-quality",
        help="Ignore perceptual hashes of lower quality, 0-100 (default: each type's own, PDQ 50).",
    ),
    all_files: bool = typer.Option(
        False, "--all", help="Report every file, not only the ones that matched."
    ),
    workers: int | None = typer.Option(
        None, "--workers", help="Hashing processes (default: all cores)."
    ),
    progress: bool | None = ProgressOption,
    db: str | None = DbOption,
) -> None:
    """Hash PATHs and match each file against the banks.

    Files in a folder that are not images or videos (by name and first bytes) are skipped and
    counted, not failed.

    Exit code: 0 no match, 3 at least one match, 1 some files could not be read (and no match),
    2 usage error.
    """
    out = Console()
    table = Table("file", "bank", "kind", "signal", "dist", "view", "classification", "source")
    matched = failed = 0
    require_paths(paths)
    not_media: list[str] = []
    with store_or_exit(db) as store:
        matcher = Matcher(store, min_quality=min_quality, dihedral=dihedral)
        pipeline = Pipeline(
            matcher,
            robust=robust,
            dihedral=bool(dihedral) or (dihedral is None and not robust),
            workers=workers,
            progress=want_progress(progress) and not as_json,
            batch_size=BATCH,
        )
        sources = iter_files(paths, on_skip=lambda path, _why: not_media.append(path))
        for record, outcome in pipeline.run(sources):
            failed += record.error is not None
            matched += outcome.matched
            if as_json:
                if outcome.matched or all_files or record.error:
                    line = {
                        "path": record.path,
                        "error": record.error,
                        **{k: v for k, v in record.to_dict().items() if k not in ("path", "error")},
                        "matches": [m.to_dict() for m in outcome.matches],
                        "suppressed": [m.to_dict() for m in outcome.suppressed],
                        "skipped": outcome.skipped,
                    }
                    typer.echo(json.dumps(line, default=str))
                continue
            if record.error:
                table.add_row(record.path, "", "", "", "", "", f"[red]{record.error}[/red]", "")
            for m in outcome.matches:
                table.add_row(
                    record.path,
                    m.bank_name,
                    m.bank_kind,
                    m.signal_type,
                    str(m.distance),
                    m.variant,
                    m.classification or "",
                    m.source or "",
                )
            if all_files and not outcome.matches and not record.error:
                note = "allowed" if outcome.suppressed else (outcome.skipped or "no match")
                table.add_row(record.path, "", "", "", "", "", note, "")
    passed = f", {len(not_media)} skipped (not images or videos)" if not_media else ""
    if not as_json:
        out.print(table)
        out.print(f"{matched} file(s) matched, {failed} failed{passed}.")
    elif not_media:
        typer.echo(f"{matched} file(s) matched, {failed} failed{passed}", err=True)
    if matched:
        raise typer.Exit(EXIT_FOUND)
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)
