# Owns `childguard audit list|export`: reading the audit log from the command line.
"""`childguard audit list|export`: who did what to which object, and when.

Thin over `childguard.store.audit_log`. Both commands take the same filters: `--actor`,
`--action` (an action or those under it: `key.` is every `key.*`), `--object TYPE[:ID]`,
`--since` and `--until` (an ISO date or time, UTC when it names no zone, or `30d`, `12h`,
`15m` ago). `list` prints the newest events first; `export` streams every matching event,
oldest first, to a file: read and written a batch at a time, so a log of any size fits in
memory, and a snapshot (events written while it runs are not in it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer

from childguard.cli import app
from childguard.cli.common import DbOption
from childguard.cli.common import fail as _fail
from childguard.cli.common import store_or_exit as _store
from childguard.cli.output import (
    FormatOption,
    JsonShortOption,
    OutputOption,
    check_output,
    choose_format,
    is_stdout,
    open_output,
    write_rows,
)

if TYPE_CHECKING:
    from childguard.store.audit_log import AuditFilter, AuditRecord

audit_app = typer.Typer(
    help="Read the audit log: who did what to which object, and when.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")

COLUMNS = ("id", "at", "actor", "action", "object_type", "object_id", "details")
EXPORT_FORMATS = ("jsonl", "csv")
SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
TABLE_WIDTH = 80
_AGO = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_time(raw: str, option: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `15m` (that long ago), a date (midnight UTC) or an ISO time (UTC when it
    names no zone); exit 2 naming `option` otherwise."""
    text = raw.strip()
    found = _AGO.match(text)
    if found:
        delta = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
        return (now or datetime.now(UTC)) - delta
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise _fail(f"bad {option} {raw!r}: use 30d, 12h, 15m, 2027-01-31 or an ISO time") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def parse_object(raw: str) -> tuple[str, str | None]:
    """`TYPE` or `TYPE:ID`."""
    kind, sep, ident = raw.partition(":")
    if not kind or (sep and not ident):
        raise _fail(f"bad --object {raw!r}: use TYPE or TYPE:ID (e.g. api_key:3)")
    return kind, ident if sep else None


def _filter(
    actor: str | None,
    action: str | None,
    obj: str | None,
    since: str | None,
    until: str | None,
) -> AuditFilter:
    from childguard.store.audit_log import AuditFilter

    object_type, object_id = parse_object(obj) if obj else (None, None)
    return AuditFilter(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
    )


def write_events(events: Iterable[AuditRecord], fmt: str, dest: IO[str]) -> int:
    """Write events to `dest` one at a time as JSON Lines or CSV (details as JSON text); how
    many it wrote."""
    rows = (e.to_dict() for e in events)
    return write_rows(rows, fmt, dest, fields=COLUMNS, sort_keys=True)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def table_lines(events: Iterable[AuditRecord]) -> list[str]:
    """One line per event, each at most 80 characters: id, time, actor, action, object."""
    widths = (7, 19, 16, 16)
    rest = TABLE_WIDTH - sum(widths) - len(widths)
    heading = ("id", "at (UTC)", "actor", "action", "object")
    lines = [" ".join(h.ljust(w) for h, w in zip(heading, (*widths, rest), strict=True)).rstrip()]
    for e in events:
        cells = (
            str(e.id),
            e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            e.actor,
            e.action,
            f"{e.object_type}:{e.object_id}",
        )
        lines.append(
            " ".join(
                _cut(c, w).ljust(w) for c, w in zip(cells, (*widths, rest), strict=True)
            ).rstrip()
        )
    return lines


ActorOption = typer.Option(None, "--actor", help="Only this actor (e.g. key:3, cli:alice).")
ActionOption = typer.Option(
    None, "--action", help="Only this action, or those under it: `key.` is every key.* action."
)
ObjectOption = typer.Option(
    None, "--object", help="Only events on objects of TYPE, or on one object TYPE:ID."
)
SinceOption = typer.Option(
    None, "--since", help="At or after: 30d, 12h, 15m ago, a date or an ISO time (UTC)."
)
UntilOption = typer.Option(
    None, "--until", help="Before: 30d, 12h, 15m ago, a date or an ISO time (UTC)."
)


@audit_app.command("list")
def audit_list(
    actor: str | None = ActorOption,
    action: str | None = ActionOption,
    obj: str | None = ObjectOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    limit: int = typer.Option(50, "--limit", min=1, help="At most this many events."),
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """List audit events, newest first (table, json, jsonl or csv)."""
    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    from childguard.store.audit_log import list_events

    where = _filter(actor, action, obj, since, until)
    with _store(db) as store:
        events = list_events(
            store,
            actor=where.actor,
            action=where.action,
            object_type=where.object_type,
            object_id=where.object_id,
            since=where.since,
            until=where.until,
            limit=limit,
            newest_first=True,
        )
    with open_output(output) as dest:
        if chosen == "table":
            for line in table_lines(events):
                dest.write(line + "\n")
        else:
            rows = (e.to_dict() for e in events)
            write_rows(rows, chosen, dest, fields=COLUMNS, sort_keys=True)
    if not is_stdout(output):
        typer.echo(f"{len(events)} audit events written to {output} as {chosen}", err=True)


@audit_app.command("export")
def audit_export(
    output: Path = typer.Option(..., "-o", "--output", help="File to write; `-` for stdout."),
    fmt: str | None = typer.Option(
        None, "--format", help="jsonl or csv (default: from the file's suffix)."
    ),
    actor: str | None = ActorOption,
    action: str | None = ActionOption,
    obj: str | None = ObjectOption,
    since: str | None = SinceOption,
    until: str | None = UntilOption,
    db: str | None = DbOption,
) -> None:
    """Export matching audit events, oldest first, as JSON Lines or CSV, a batch at a time."""
    to_stdout = str(output) == "-"
    chosen = fmt or SUFFIX_FORMATS.get(output.suffix.lower())
    if chosen is None:
        raise _fail(
            f"cannot tell the format from {output.name!r}: name a .jsonl or .csv file, "
            "or give --format jsonl|csv"
        )
    if chosen not in EXPORT_FORMATS:
        raise _fail(f"unknown --format {chosen!r}: use {', '.join(EXPORT_FORMATS)}")
    where = _filter(actor, action, obj, since, until)
    if not to_stdout and not output.parent.is_dir():
        raise _fail(f"no folder {str(output.parent)!r} to write {output.name!r} in")
    with _store(db) as store:
        from childguard.store.audit_log import iter_events

        sink = nullcontext(sys.stdout) if to_stdout else output.open("w", newline="")
        with sink as dest:
            written = write_events(iter_events(store, where), chosen, dest)
    message = f"{written} audit events written to {'stdout' if to_stdout else output}"
    typer.echo(message, err=to_stdout)
