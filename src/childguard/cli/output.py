# Owns the output conventions of the commands: `--format table|json|jsonl|csv` (with `--json`
# short for `--format json`) for listings, and `-o/--output` for every command that writes a file.
"""One way to print or write rows, for every listing command.

A listing command takes `FormatOption`, `JsonShortOption` and `OutputOption`, turns them into
one format with `choose_format` (the `--format` named, else `json` for `--json`, else the
output file's suffix, else `table`), and hands its rows to `emit`:

    fmt = choose_format(fmt, as_json, output)
    emit(rows, fmt, columns=COLUMNS, output=output, title="Banks")

`rows` are plain mappings holding every field: `json` and `jsonl` write them whole (one array,
or one object a line), `csv` writes every field with nested values as JSON text (a text cell a
spreadsheet would run as a formula is written with a leading `'`, `childguard.csv_safe`), and
`table` shows `columns` only. A table fits the terminal's width (80 columns when it is not a
terminal, or COLUMNS): cells wrap rather than end in `…`, and a URL column shortens the middle
of a long URL (`http://example.com/…/photo.jpg`). Every cell is printed as it is, never read as
Rich markup. `-o FILE` writes there instead of standard output (`-` is standard
output) and says on stderr how many rows went where; a missing folder is a usage error, and
nothing is written before the format and the folder are known to be good.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Literal

import typer
from rich.table import Table
from rich.text import Text

from childguard.cli.common import console_for, err, fail
from childguard.csv_safe import safe_cell

LIST_FORMATS = ("table", "json", "jsonl", "csv")
SUFFIX_FORMATS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".txt": "table",
}

FormatOption = typer.Option(
    None, "--format", help="table (default), json, jsonl or csv; a -o file's suffix implies one."
)
JsonShortOption = typer.Option(False, "--json", help="Short for --format json.")
OutputOption = typer.Option(
    None, "-o", "--output", help="Write to this file instead of standard output (- for stdout)."
)


@dataclass(frozen=True)
class Column:
    """One column of the table format: the row key, its heading, alignment and cell text.

    `url` columns shorten a URL longer than `max_width` in its middle (`elide_middle`); other
    cells wrap (at most `max_width` wide, when given)."""

    key: str
    heading: str | None = None
    justify: Literal["left", "right"] = "left"
    show: Callable[[Any], str] | None = None
    max_width: int | None = None
    url: bool = False
    min_width: int | None = None

    def cell(self, row: Mapping[str, Any]) -> str:
        value = row.get(self.key)
        text = self.show(value) if self.show is not None else text_cell(value)
        if self.url and self.max_width is not None:
            return elide_middle(text, self.max_width)
        return text


ELLIPSIS = "…"


def elide_middle(text: str, width: int) -> str:
    """`text` at most `width` characters, shortened in its middle: a URL keeps its scheme and
    host and its last path segment (`http://example.com/…/photo.jpg`), other text its start
    and end. Never cut to its first letters."""
    if len(text) <= width:
        return text
    if width < 5:
        return text[: max(width - 1, 0)] + ELLIPSIS
    scheme, sep, rest = text.partition("://")
    if sep and "/" in rest:
        host, _, path = rest.partition("/")
        head = f"{scheme}://{host}/"
        tail = path.rsplit("/", 1)[-1] if "/" in path else path
        if len(head) + len(ELLIPSIS) + 1 + len(tail) <= width:
            return f"{head}{ELLIPSIS}/{tail}"
        if len(head) + len(ELLIPSIS) + 8 <= width:
            return head + ELLIPSIS + text[-(width - len(head) - len(ELLIPSIS)) :]
    keep = width - len(ELLIPSIS)
    front = (keep + 1) // 2
    return text[:front] + ELLIPSIS + text[len(text) - (keep - front) :]


def text_cell(value: Any) -> str:
    """A value as table or CSV text: '' for None, JSON for lists and mappings, ISO times."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return str(value)


def is_stdout(output: Path | None) -> bool:
    return output is None or str(output) == "-"


def choose_format(
    fmt: str | None,
    as_json: bool = False,
    output: Path | None = None,
    *,
    allowed: Sequence[str] = LIST_FORMATS,
    default: str = "table",
) -> str:
    """The one format a command writes in; exit 2 for an unknown one or `--json` with another
    `--format`."""
    named = fmt.strip().lower() if fmt is not None else None
    if as_json and named not in (None, "json"):
        raise fail(f"--json is short for --format json; it cannot go with --format {fmt}")
    chosen = named or ("json" if as_json else None)
    if chosen is None and not is_stdout(output):
        assert output is not None
        chosen = SUFFIX_FORMATS.get(output.suffix.lower())
    chosen = chosen or default
    if chosen not in allowed:
        raise fail(f"unknown --format {fmt or chosen!r}: use {', '.join(allowed)}")
    return chosen


def check_output(output: Path | None) -> None:
    """Exit 2 before anything is written when `output` cannot be written where it says."""
    if is_stdout(output):
        return
    assert output is not None
    if output.is_dir():
        raise fail(f"-o {output} is a folder; name a file")
    if not output.parent.is_dir():
        raise fail(f"no folder {str(output.parent)!r} to write {output.name!r} in")


@contextmanager
def open_output(output: Path | None) -> Iterator[IO[str]]:
    """Standard output, or `output` opened for writing text (checked first)."""
    check_output(output)
    if is_stdout(output):
        yield sys.stdout
        return
    assert output is not None
    with output.open("w", encoding="utf-8", newline="") as fh:
        yield fh


def write_rows(
    rows: Iterable[Mapping[str, Any]],
    fmt: str,
    dest: IO[str],
    *,
    fields: Sequence[str] | None = None,
    sort_keys: bool = False,
) -> int:
    """Write rows as json (one array), jsonl (an object a line) or csv (a header of `fields`,
    else the first row's keys); how many rows it wrote. jsonl and csv stream a row at a time."""
    written = 0
    if fmt == "json":
        items = [dict(r) for r in rows]
        dest.write(
            json.dumps(items, indent=2, sort_keys=sort_keys, default=str, ensure_ascii=False) + "\n"
        )
        return len(items)
    if fmt == "jsonl":
        for row in rows:
            dest.write(json.dumps(row, sort_keys=sort_keys, default=str, ensure_ascii=False) + "\n")
            written += 1
        return written
    if fmt == "csv":
        writer: csv.DictWriter[str] | None = None
        if fields is not None:
            writer = csv.DictWriter(dest, fieldnames=list(fields), extrasaction="ignore")
            writer.writeheader()
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(dest, fieldnames=list(row), extrasaction="ignore")
                writer.writeheader()
            writer.writerow({k: safe_cell(text_cell(v)) for k, v in row.items()})
            written += 1
        return written
    raise ValueError(f"write_rows writes json, jsonl or csv, not {fmt!r}")


def render_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    dest: IO[str],
    *,
    title: str | None = None,
) -> int:
    """The rows as a Rich table of `columns` (plain text when `dest` is not a terminal), every
    cell as it is (no markup) and wrapped rather than cut."""
    table = plain_table(*(col.heading or col.key for col in columns), title=title)
    for col, rich_col in zip(columns, table.columns, strict=True):
        rich_col.justify = col.justify
        rich_col.max_width = col.max_width
        rich_col.min_width = col.min_width
        if col.url and col.min_width is None:
            rich_col.min_width = min(col.max_width or 24, 24)
    count = 0
    for row in rows:
        table.add_row(*(col.cell(row) for col in columns))
        count += 1
    console_for(dest).print(table)
    return count


def plain_table(*headings: str, title: str | None = None, show_header: bool = True) -> Table:
    """A Rich table whose cells wrap (overflow `fold`) instead of ending in `…`; print it
    through a `common.console_for` console so no cell is read as markup."""
    table = Table(title=Text(title) if title else None, show_header=show_header)
    for heading in headings:
        table.add_column(Text(heading), overflow="fold")
    return table


def emit(
    rows: Iterable[Mapping[str, Any]],
    fmt: str,
    *,
    columns: Sequence[Column],
    output: Path | None = None,
    title: str | None = None,
    fields: Sequence[str] | None = None,
    sort_keys: bool = False,
) -> int:
    """Print or write `rows` in `fmt` (from `choose_format`); with a file `output`, say on
    stderr how many rows went there. Returns the count."""
    with open_output(output) as dest:
        if fmt == "table":
            count = render_table(rows, columns, dest, title=title)
        else:
            count = write_rows(rows, fmt, dest, fields=fields, sort_keys=sort_keys)
    if not is_stdout(output):
        err.print(f"{count:,} rows written to {output} as {fmt}", highlight=False, soft_wrap=True)
    return count


def emit_one(
    record: Mapping[str, Any],
    fmt: str,
    *,
    output: Path | None = None,
    table: Callable[[IO[str]], None],
    csv_rows: Callable[[], Iterable[Mapping[str, Any]]] | None = None,
) -> None:
    """Print or write one record: json as an object, jsonl as one line, csv as `csv_rows()`
    (default: the record as one row), table by `table(dest)`."""
    with open_output(output) as dest:
        if fmt == "table":
            table(dest)
        elif fmt == "json":
            dest.write(json.dumps(record, indent=2, default=str, ensure_ascii=False) + "\n")
        elif fmt == "jsonl":
            dest.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
        else:
            write_rows(csv_rows() if csv_rows else [record], "csv", dest)
    if not is_stdout(output):
        err.print(f"written to {output} as {fmt}", highlight=False, soft_wrap=True)
