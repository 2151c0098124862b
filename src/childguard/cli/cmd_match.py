"""`childguard match`: hash files and match them against every enabled bank in one pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

import typer

from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_PARTIAL, app
from childguard.cli.common import (
    ArchivesOption,
    DbOption,
    ProgressOption,
    WorkersOption,
    console_for,
    err,
    require_paths,
    store_or_exit,
    styled,
    want_progress,
)
from childguard.cli.output import (
    FormatOption,
    OutputOption,
    check_output,
    choose_format,
    is_stdout,
    open_output,
    plain_table,
)
from childguard.csv_safe import safe_mapping

BATCH = 64
CSV_FIELDS = (
    "path",
    "error",
    "bank",
    "bank_kind",
    "signal_type",
    "distance",
    "view",
    "classification",
    "source",
    "note",
)


class JsonArray:
    """Write objects as one JSON array, an object at a time (nothing is held back)."""

    def __init__(self, dest: IO[str]) -> None:
        self.dest, self.count = dest, 0

    def write(self, item: dict[str, Any]) -> None:
        self.dest.write(("[\n  " if self.count == 0 else ",\n  ") + json.dumps(item, default=str))
        self.count += 1

    def close(self) -> None:
        self.dest.write("[]\n" if self.count == 0 else "\n]\n")


@app.command("match")
def match_cmd(
    paths: list[Path] = typer.Argument(..., help="Files or folders (recursive)."),
    fmt: str | None = FormatOption,
    as_json: bool = typer.Option(
        False, "--json", help="Short for --format json: one JSON array, an object per file."
    ),
    output: Path | None = OutputOption,
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
    archives: bool = ArchivesOption,
    workers: int | None = WorkersOption,
    progress: bool | None = ProgressOption,
    db: str | None = DbOption,
) -> None:
    """Hash PATHs and match each file against the banks.

    Output: a table (default); json, one array with an object per file (`--json`); jsonl, an
    object a line; csv, a row per match. Files in a folder that are not images or videos (by
    name and first bytes) are skipped and counted, not failed.

    Exit code: 0 no match, 3 at least one match, 1 some files could not be read (and no match),
    2 usage error.
    """
    from childguard.matcher import Matcher
    from childguard.pipeline import Pipeline, iter_files

    chosen = choose_format(fmt, as_json, output)
    require_paths(paths)
    check_output(output)
    table = plain_table(
        "file", "bank", "kind", "signal", "dist", "view", "classification", "source"
    )
    matched = failed = 0
    not_media: list[str] = []
    with store_or_exit(db) as store, open_output(output) as dest:
        matcher = Matcher(store, min_quality=min_quality, dihedral=dihedral)
        pipeline = Pipeline(
            matcher,
            robust=robust,
            dihedral=bool(dihedral) or (dihedral is None and not robust),
            workers=workers,
            progress=want_progress(progress, to_stdout=is_stdout(output)),
            batch_size=BATCH,
        )
        sources = iter_files(
            paths,
            include_archives=archives,
            on_skip=lambda path, _why: not_media.append(path),
        )
        array = JsonArray(dest) if chosen == "json" else None
        csv_writer = _csv_writer(dest) if chosen == "csv" else None
        for record, outcome in pipeline.run(sources):
            failed += record.error is not None
            matched += outcome.matched
            if chosen == "table":
                _table_rows(table, record, outcome, all_files)
                continue
            if not (outcome.matched or all_files or record.error):
                continue
            line = {
                "path": record.path,
                "error": record.error,
                **{k: v for k, v in record.to_dict().items() if k not in ("path", "error")},
                "matches": [m.to_dict() for m in outcome.matches],
                "suppressed": [m.to_dict() for m in outcome.suppressed],
                "skipped": outcome.skipped,
            }
            if array is not None:
                array.write(line)
            elif csv_writer is not None:
                for row in _csv_rows(record, outcome):
                    csv_writer.writerow(safe_mapping(row))
            else:
                dest.write(json.dumps(line, default=str) + "\n")
            dest.flush()
        if array is not None:
            array.close()
        if chosen == "table":
            console_for(dest).print(table)
    passed = f", {len(not_media)} skipped (not images or videos)" if not_media else ""
    summary = f"{matched} file(s) matched, {failed} failed{passed}"
    if chosen == "table" and is_stdout(output):
        console_for().print(f"{summary}.")
    else:
        err.print(summary)
    if matched:
        raise typer.Exit(EXIT_FOUND)
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)


def _table_rows(table: Any, record: Any, outcome: Any, all_files: bool) -> None:
    if record.error:
        table.add_row(record.path, "", "", "", "", "", styled((record.error, "red")), "")
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


def _csv_writer(dest: IO[str]) -> Any:
    import csv

    writer = csv.DictWriter(dest, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    writer.writeheader()
    return writer


def _csv_rows(record: Any, outcome: Any) -> list[dict[str, Any]]:
    """A row per match; a file with no match (or an error) gets one row saying so."""
    rows = [
        {
            "path": record.path,
            "error": "",
            "bank": m.bank_name,
            "bank_kind": m.bank_kind,
            "signal_type": m.signal_type,
            "distance": m.distance,
            "view": m.variant,
            "classification": m.classification or "",
            "source": m.source or "",
            "note": "",
        }
        for m in outcome.matches
    ]
    if not rows:
        note = "" if record.error else ("allowed" if outcome.suppressed else "no match")
        rows.append({"path": record.path, "error": record.error or "", "note": note})
    return rows
