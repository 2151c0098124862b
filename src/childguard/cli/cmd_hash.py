# Owns the `hash` command.
"""`childguard hash PATH...`: hash files and folders into JSON Lines or CSV records.

The work is `childguard.pipeline` (with no matcher); this module owns the command line: output
formats, `--resume` against an existing output file, the progress-bar choice
and the exit code (0 all hashed, 1 some inputs failed, 2 usage error). In CSV a text cell that
a spreadsheet would run as a formula (a file named `=1+1.jpg`) is written with a leading `'`.
"""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

import typer

from childguard.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app
from childguard.cli.common import ArchivesOption, WorkersOption, require_paths, want_progress
from childguard.csv_safe import safe_mapping, unquote_cell

if TYPE_CHECKING:
    from childguard.signals.content import ContentSignals


def record_row(record: ContentSignals, dihedral: bool) -> dict[str, object]:
    """The record in the output layout, plus `pdq_dihedral` with `dihedral`."""
    from childguard.pipeline import pdq_dihedral

    row: dict[str, object] = record.to_dict()
    if dihedral:
        row["pdq_dihedral"] = pdq_dihedral(record)
    return row


class OutputFormat(StrEnum):
    jsonl = "jsonl"
    csv = "csv"


class RecordWriter(Protocol):
    def write(self, record: ContentSignals) -> None: ...


class JsonLinesWriter:
    """One JSON object per line, keys in `output_fields()` order."""

    def __init__(self, fh: IO[str], dihedral: bool) -> None:
        self.fh, self.dihedral = fh, dihedral

    def write(self, record: ContentSignals) -> None:
        self.fh.write(json.dumps(record_row(record, self.dihedral), ensure_ascii=False) + "\n")
        self.fh.flush()


class CsvWriter:
    """CSV with a header; `pdq_dihedral` holds the 8 variants separated by spaces."""

    def __init__(self, fh: IO[str], dihedral: bool, *, header: bool) -> None:
        from childguard.signals.content import output_fields

        self.fh, self.dihedral = fh, dihedral
        self.fields = list(output_fields()) + (["pdq_dihedral"] if dihedral else [])
        self.writer = csv.DictWriter(fh, fieldnames=self.fields, lineterminator="\n")
        if header:
            self.writer.writeheader()

    def write(self, record: ContentSignals) -> None:
        row = record_row(record, self.dihedral)
        if self.dihedral:
            from childguard.pipeline import pdq_dihedral

            row["pdq_dihedral"] = " ".join(pdq_dihedral(record) or [])
        self.writer.writerow(safe_mapping(row))
        self.fh.flush()


class _CurrentStdout:
    """Writes to whatever `sys.stdout` is at the time, so Rich's live display can
    route records above the progress bar when both share a terminal."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def done_paths(out: Path, fmt: OutputFormat) -> set[str]:
    """Paths already recorded in `out` (for --resume).

    A last line cut short by an interrupted run is removed from the file, so the
    output stays well formed and that path is hashed again.
    """
    if not out.exists() or out.stat().st_size == 0:
        return set()
    raw = out.read_bytes()
    if not raw.endswith(b"\n"):
        cut = raw.rfind(b"\n") + 1
        with out.open("r+b") as fh:
            fh.truncate(cut)
        raw = raw[:cut]
    text = raw.decode("utf-8", errors="replace")
    paths: set[str] = set()
    if fmt is OutputFormat.csv:
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise typer.BadParameter(
                f"{out} is not a childguard CSV (no `path` column)", param_hint="--output"
            )
        paths.update(unquote_cell(row["path"]) for row in reader if row.get("path"))
        return paths
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            paths.add(json.loads(line)["path"])
        except (ValueError, KeyError, TypeError):
            raise typer.BadParameter(
                f"{out} line {number} is not a childguard JSON record; refusing to append to it",
                param_hint="--output",
            ) from None
    return paths


@app.command("hash")
def hash_command(
    paths: list[Path] = typer.Argument(..., help="Files and folders (walked recursively)."),
    out: Path | None = typer.Option(
        None, "--output", "-o", "--out", help="Write records here instead of stdout."
    ),
    fmt: OutputFormat | None = typer.Option(
        None, "--format", "-f", help="jsonl (default) or csv; a .csv --output implies csv."
    ),
    dihedral: bool = typer.Option(
        False, "--dihedral", help="Also emit the 8 rotation/flip PDQ hashes."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Skip paths already in --output and append."
    ),
    workers: int | None = WorkersOption,
    archives: bool = ArchivesOption,
    progress: bool | None = typer.Option(
        None,
        "--progress/--no-progress",
        help="Progress bar (default: only on a terminal, never when piped).",
    ),
) -> None:
    """Hash images and videos: md5, sha1, sha256, PDQ (photos) and vPDQ (videos), one
    record per file.

    Bad files never stop the batch: they get a record whose `error` says why. Files in a
    folder that are not images or videos (neither by name nor by their first bytes: a
    manifest.csv, a readme.txt) are skipped and counted, not failed.
    Exit code 0 when every file hashed, 1 when some failed, 2 on usage errors.
    """
    from childguard.pipeline import Pipeline, iter_files

    require_paths(paths)
    if resume and out is None:
        typer.echo("error: --resume needs -o/--output (the file to resume)", err=True)
        raise typer.Exit(EXIT_USAGE)
    chosen = fmt or (
        OutputFormat.csv if out is not None and out.suffix.lower() == ".csv" else OutputFormat.jsonl
    )
    skip = done_paths(out, chosen) if resume and out is not None else set()
    not_media: list[str] = []
    sources = [
        s
        for s in iter_files(
            paths, include_archives=archives, on_skip=lambda path, _why: not_media.append(path)
        )
        if s.path not in skip
    ]
    progress = want_progress(progress, to_stdout=out is None)

    fh: IO[str]
    appending = resume and out is not None and out.exists() and out.stat().st_size > 0
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        fh = out.open("a" if appending else "w", encoding="utf-8", newline="")
    else:
        fh = _CurrentStdout()  # type: ignore[assignment]
    writer: RecordWriter = (
        CsvWriter(fh, dihedral, header=not appending)
        if chosen is OutputFormat.csv
        else JsonLinesWriter(fh, dihedral)
    )
    hashed = failed = 0
    try:
        pipeline = Pipeline(robust=False, dihedral=dihedral, workers=workers, progress=progress)
        for record in pipeline.signals(sources):
            writer.write(record)
            hashed += 1
            failed += record.error is not None
    finally:
        if out is not None:
            fh.close()
    done = f", {len(skip)} already done" if skip else ""
    passed = f", {len(not_media)} skipped (not images or videos)" if not_media else ""
    typer.echo(f"hashed {hashed} files, {failed} failed{passed}{done}", err=True)
    raise typer.Exit(EXIT_PARTIAL if failed else EXIT_OK)
