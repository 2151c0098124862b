# Owns the `bank` command group.
"""`childguard bank create|list|show|update|release|import|export|stats|delete`: manage hash
banks."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from childguard.cli import EXIT_OK, EXIT_USAGE, app
from childguard.cli.common import DbOption, JsonOption, console_for, err, out
from childguard.cli.common import actor_name as _actor
from childguard.cli.common import fail as _fail
from childguard.cli.common import store_or_exit as _store
from childguard.cli.output import (
    Column,
    FormatOption,
    JsonShortOption,
    OutputOption,
    check_output,
    choose_format,
    emit,
    emit_one,
    plain_table,
)
from childguard.vocabulary import BANK_KINDS, DEFAULT_PDQ_THRESHOLD, HASH_LIST_FORMATS

if TYPE_CHECKING:
    from childguard.banks import BankStats
    from childguard.store import Bank

bank_app = typer.Typer(
    help="Manage hash banks: create, list, show, update, release, import, export, stats, delete."
)
app.add_typer(bank_app, name="bank")

PROGRESS_MIN_BYTES = 4 << 20  # show a progress bar for files from 4 MiB

ActorOption = typer.Option(
    None, "--actor", help="Who is acting, for the audit log (default: the OS user)."
)


def _bank_dict(bank: Bank) -> dict[str, Any]:
    return {
        "id": bank.id,
        "name": bank.name,
        "kind": bank.kind,
        "description": bank.description,
        "owner": bank.owner,
        "pdq_threshold": bank.pdq_threshold,
        "thresholds": bank.thresholds or {},
        "enabled": bank.enabled,
        "match_cap_per_minute": bank.match_cap_per_minute,
        "quarantined_at": bank.quarantined_at.isoformat() if bank.quarantined_at else None,
        "quarantine_reason": bank.quarantine_reason,
        "created_at": bank.created_at.isoformat(),
        "updated_at": bank.updated_at.isoformat(),
    }


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


@bank_app.command("create")
def create(
    name: str = typer.Argument(..., help="Unique bank name."),
    kind: str = typer.Option(..., "--kind", help=f"One of: {', '.join(BANK_KINDS)}."),
    description: str = typer.Option("", "--description", help="What the bank holds."),
    owner: str = typer.Option("", "--owner", help="Organisation or person responsible."),
    threshold: int = typer.Option(
        DEFAULT_PDQ_THRESHOLD, "--threshold", help="PDQ match threshold (0-256)."
    ),
    signal_threshold: list[str] | None = typer.Option(
        None,
        "--signal-threshold",
        help="TYPE=VALUE, the threshold of another near signal type, e.g. vpdq=80,50 (percent "
        "of query frames, percent of bank frames). Repeatable.",
    ),
    disabled: bool = typer.Option(False, "--disabled", help="Create the bank disabled."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
    actor: str | None = ActorOption,
) -> None:
    """Create a bank."""
    from childguard.banks import create_bank

    thresholds: dict[str, str] = {}
    for item in signal_threshold or []:
        signal_type, sep, value = item.partition("=")
        if not sep or not signal_type.strip() or not value.strip():
            raise _fail(f"--signal-threshold wants TYPE=VALUE, got {item!r}")
        thresholds[signal_type.strip()] = value.strip()
    with _store(db, create=True) as store:
        bank = create_bank(
            store,
            name,
            kind,
            description=description,
            owner=owner,
            pdq_threshold=threshold,
            thresholds=thresholds or None,
            enabled=not disabled,
            actor=_actor(actor),
        )
    if as_json:
        _print_json(_bank_dict(bank))
    else:
        out.print(f"created bank {bank.name} ({bank.kind}, PDQ threshold {bank.pdq_threshold})")


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


LIST_COLUMNS = (
    Column("name"),
    Column("kind"),
    Column("entries", justify="right", show=lambda n: f"{n:,}"),
    Column("pdq_threshold", "PDQ threshold", justify="right"),
    Column("enabled", show=_yes_no),
    Column("owner"),
    Column("description"),
)


@bank_app.command("list")
def list_(
    kind: str | None = typer.Option(None, "--kind", help="Only banks of this kind."),
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """List banks with their entry counts (table, json, jsonl or csv)."""
    from childguard.banks import entry_counts, list_banks

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    with _store(db) as store:
        banks = list_banks(store, kind=kind)
        by_bank = entry_counts(store)
        rows = [{**_bank_dict(b), "entries": by_bank.get(b.id, 0)} for b in banks]
    emit(rows, chosen, columns=LIST_COLUMNS, output=output, title="Banks")


def _stats_dict(stats: BankStats) -> dict[str, Any]:
    row = dataclasses.asdict(stats)
    for key in ("first_imported", "last_imported"):
        row[key] = row[key].isoformat() if row[key] is not None else None
    return row


def _stats_rows(stats: BankStats) -> list[dict[str, Any]]:
    """The stats as long rows (group, key, entries) for CSV."""
    rows: list[dict[str, Any]] = [
        {"bank": stats.bank, "group": "total", "key": "", "entries": stats.total}
    ]
    for group, counts in (
        ("signal_type", stats.by_signal_type),
        ("classification", stats.by_classification),
        ("source", stats.by_source),
    ):
        rows += [
            {"bank": stats.bank, "group": group, "key": k, "entries": n}
            for k, n in sorted(counts.items())
        ]
    return rows


def _print_stats(stats: BankStats, console: Console | None = None) -> None:
    table = plain_table("field", "value", title=f"Bank {stats.bank}", show_header=False)
    table.add_row("kind", stats.kind)
    table.add_row("enabled", "yes" if stats.enabled else "no")
    table.add_row("PDQ threshold", str(stats.pdq_threshold))
    table.add_row("entries", f"{stats.total:,}")
    for t, n in sorted(stats.by_signal_type.items()):
        table.add_row(f"  {t}", f"{n:,}")
    for c, n in sorted(stats.by_classification.items()):
        table.add_row(f"  class {c}", f"{n:,}")
    for s, n in sorted(stats.by_source.items()):
        table.add_row(f"  source {s}", f"{n:,}")
    table.add_row("first imported", str(stats.first_imported or "-"))
    table.add_row("last imported", str(stats.last_imported or "-"))
    (console or out).print(table)


@bank_app.command("show")
def show(
    name: str = typer.Argument(..., help="Bank name."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one bank's settings and counts."""
    from childguard.banks import bank_stats, get_bank

    with _store(db) as store:
        bank = get_bank(store, name)
        stats = bank_stats(store, bank.id)
    if as_json:
        _print_json({**_bank_dict(bank), "stats": _stats_dict(stats)})
        return
    out.print(f"{bank.name}  {bank.description}")
    out.print(f"owner: {bank.owner or '-'}   created {bank.created_at:%Y-%m-%d %H:%M} UTC")
    _print_stats(stats)


@bank_app.command("update")
def update(
    name: str = typer.Argument(..., help="Bank name."),
    match_cap: str | None = typer.Option(
        None,
        "--match-cap",
        help="Matches a minute past which the bank is quarantined: a number (0: no cap), or "
        "'default' for the service's bank_match_cap_per_minute.",
    ),
    threshold: int | None = typer.Option(None, "--threshold", help="PDQ match threshold (0-256)."),
    signal_threshold: list[str] | None = typer.Option(
        None,
        "--signal-threshold",
        help="TYPE=VALUE, the threshold of another near signal type (e.g. vpdq=80,50), or "
        "TYPE=default to go back to the type's default; the other types keep theirs. "
        "Repeatable.",
    ),
    enabled: bool | None = typer.Option(
        None, "--enable/--disable", help="Match against this bank or not."
    ),
    description: str | None = typer.Option(None, "--description", help="What the bank holds."),
    owner: str | None = typer.Option(None, "--owner", help="Organisation or person responsible."),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
    actor: str | None = ActorOption,
) -> None:
    """Change a bank's thresholds, enabled flag, match cap, description or owner (audited).
    Every service worker matches with the new settings at its next refresh."""
    from childguard.banks import update_bank

    changes: dict[str, Any] = {}
    per_type: dict[str, str | None] = {}
    for item in signal_threshold or []:
        signal_type, sep, value = item.partition("=")
        signal_type, value = signal_type.strip(), value.strip()
        if not sep or not signal_type or not value:
            raise _fail(f"--signal-threshold wants TYPE=VALUE or TYPE=default, got {item!r}")
        if signal_type.lower() == "pdq":
            raise _fail("PDQ's threshold is --threshold")
        per_type[signal_type] = None if value.lower() == "default" else value
    if per_type:
        changes["threshold_changes"] = per_type
    if match_cap is not None:
        if match_cap.strip().lower() == "default":
            changes["match_cap_per_minute"] = None
        elif match_cap.strip().isdigit():
            changes["match_cap_per_minute"] = int(match_cap)
        else:
            raise _fail(f"--match-cap wants a number (0: no cap) or 'default', got {match_cap!r}")
    if threshold is not None:
        changes["pdq_threshold"] = threshold
    if enabled is not None:
        changes["enabled"] = enabled
    if description is not None:
        changes["description"] = description
    if owner is not None:
        changes["owner"] = owner
    if not changes:
        raise _fail(
            "nothing to change: give --threshold, --signal-threshold, --enable/--disable, "
            "--match-cap, --description or --owner"
        )
    with _store(db) as store:
        bank = update_bank(store, name, actor=_actor(actor), **changes)
    if as_json:
        _print_json(_bank_dict(bank))
    else:
        said = sorted("thresholds" if k == "threshold_changes" else k for k in changes)
        out.print(
            f"updated bank {bank.name}: {', '.join(said)} "
            f"(PDQ threshold {bank.pdq_threshold}, {'enabled' if bank.enabled else 'disabled'})"
        )


@bank_app.command("release")
def release(
    name: str = typer.Argument(..., help="The quarantined bank."),
    db: str | None = DbOption,
    actor: str | None = ActorOption,
) -> None:
    """Release a bank from quarantine, so it matches again (audited). Every service worker
    matches it again at its next refresh."""
    from childguard.banks import get_bank, release_bank

    with _store(db) as store:
        before = get_bank(store, name)
        if before.quarantined_at is None:
            out.print(f"bank {name} is not quarantined")
            return
        release_bank(store, before.id, actor=_actor(actor))
    out.print(
        f"released bank {name} (quarantined {before.quarantined_at:%Y-%m-%d %H:%M} "
        f"UTC: {before.quarantine_reason or 'no reason given'})"
    )


@bank_app.command("stats")
def stats(
    name: str = typer.Argument(..., help="Bank name."),
    fmt: str | None = FormatOption,
    as_json: bool = JsonShortOption,
    output: Path | None = OutputOption,
    db: str | None = DbOption,
) -> None:
    """Counts per signal type, classification and source (table, json, jsonl, or csv: one row
    per bank, group and key)."""
    from childguard.banks import bank_stats

    chosen = choose_format(fmt, as_json, output)
    check_output(output)
    with _store(db) as store:
        result = bank_stats(store, name)
    emit_one(
        _stats_dict(result),
        chosen,
        output=output,
        table=lambda dest: _print_stats(result, console_for(dest)),
        csv_rows=lambda: _stats_rows(result),
    )


@bank_app.command("import")
def import_(
    name: str = typer.Argument(..., help="Bank to import into."),
    path: Path = typer.Argument(
        ..., help="Hash list file.", exists=True, dir_okay=False, readable=True
    ),
    fmt: str | None = typer.Option(
        None, "--format", "-f", help=f"{', '.join(HASH_LIST_FORMATS)} (default: guessed)."
    ),
    signal_type: str | None = typer.Option(
        None,
        "--signal-type",
        "-t",
        help="Type of untyped hashes (needed for 64-digit plain lists).",
    ),
    column_map: str | None = typer.Option(
        None, "--map", help="CSV column mapping, e.g. value=Hash,classification_label=Category."
    ),
    skip_invalid: bool = typer.Option(
        False, "--skip-invalid", help="Import the valid records, report the rest."
    ),
    source: str | None = typer.Option(
        None, "--source", help="Source list name (default: file name)."
    ),
    organisation: str | None = typer.Option(
        None, "--organisation", "--org", help="Supplying organisation."
    ),
    db: str | None = DbOption,
    as_json: bool = JsonOption,
    actor: str | None = ActorOption,
) -> None:
    """Import a hash list. Idempotent; all or nothing unless --skip-invalid."""
    from childguard.banks import import_file
    from childguard.banks.formats import parse_column_map

    mapping = None
    with _store(db) as store:
        if column_map:
            mapping = parse_column_map(column_map)
        size = path.stat().st_size
        show_bar = size >= PROGRESS_MIN_BYTES and not as_json and err.is_terminal
        with Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TimeRemainingColumn(),
            console=err,
            disable=not show_bar,
        ) as bar:
            task = bar.add_task(f"importing {path.name}", total=size)
            result = import_file(
                store,
                name,
                path,
                actor=_actor(actor),
                fmt=fmt,
                signal_type=signal_type,
                column_map=mapping,
                skip_invalid=skip_invalid,
                source=source,
                organisation=organisation,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
    if as_json:
        _print_json(
            {
                "bank": result.bank,
                "read": result.read,
                "added": result.added,
                "already_present": result.already_present,
                "skipped": [dataclasses.asdict(s) for s in result.skipped],
            }
        )
    else:
        out.print(
            f"bank {result.bank}: {result.added:,} added, "
            f"{result.already_present:,} already present, "
            f"{len(result.skipped):,} skipped as invalid"
        )
        for s in result.skipped[:50]:
            out.print(f"  skipped {s.describe()}")
        if len(result.skipped) > 50:
            out.print(f"  ... and {len(result.skipped) - 50:,} more (use --json for all)")
    raise typer.Exit(EXIT_OK)


@bank_app.command("export")
def export(
    name: str = typer.Argument(..., help="Bank to export."),
    legacy_path: str | None = typer.Argument(
        None,
        metavar="PATH",
        help="Deprecated: the output file as a second argument; use -o/--output.",
        show_default=False,
    ),
    output: str | None = typer.Option(
        None, "-o", "--output", help="Output file, or - for standard output."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help=f"{', '.join(HASH_LIST_FORMATS)} (default: from the suffix, else csv).",
    ),
    signal_type: list[str] | None = typer.Option(
        None, "--signal-type", "-t", help="Only these types (repeatable)."
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="VICS category profile (US, UK, Default)."
    ),
    container: str = typer.Option("media", "--vics-container", help="VICS: media or cases."),
    db: str | None = DbOption,
    actor: str | None = ActorOption,
) -> None:
    """Export a bank to -o FILE (- for standard output). csv and vics keep provenance and
    classification; plain and te keep hashes."""
    from childguard.banks import export_bank
    from childguard.banks.formats import (
        ExportError,
        WriteOptions,
        format_for_output,
    )

    if legacy_path is not None:
        if output is not None and output != legacy_path:
            raise _fail(f"two outputs: {legacy_path!r} and -o {output!r}; give -o only")
        err.print(
            f"warning: the output file as an argument is deprecated and goes in the next "
            f"release; use -o {legacy_path}",
            soft_wrap=True,
        )
    path = output if output is not None else legacy_path
    if path is None:
        raise _fail("no output: give -o FILE, or -o - for standard output")
    if fmt is not None and fmt.strip().lower() not in HASH_LIST_FORMATS:
        raise _fail(f"unknown --format {fmt!r}: use {', '.join(HASH_LIST_FORMATS)}")
    if path != "-":
        check_output(Path(path))
    options = WriteOptions(vics_profile=profile, vics_container=container)
    fmt = fmt or format_for_output(None if path == "-" else Path(path))
    with _store(db) as store:
        try:
            target: Any = sys.stdout if path == "-" else Path(path)
            result = export_bank(
                store,
                name,
                target,
                fmt,
                actor=_actor(actor),
                signal_types=signal_type or None,
                options=options,
            )
        except ExportError as exc:
            raise _fail(str(exc)) from None
    msg = f"exported {result.written:,} records from {name} as {fmt}"
    if result.skipped:
        msg += f"; left out {result.skipped:,} entries ({result.skipped_reason})"
    err.print(msg)


@bank_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Bank to delete, with all its entries."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    db: str | None = DbOption,
    actor: str | None = ActorOption,
) -> None:
    """Delete a bank and its entries (audited)."""
    from childguard.banks import delete_bank, get_bank

    with _store(db) as store:
        bank = get_bank(store, name)
        if not yes and not typer.confirm(f"delete bank {bank.name!r} and all its entries?"):
            err.print("nothing deleted")
            raise typer.Exit(EXIT_USAGE)
        removed = delete_bank(store, bank.id, actor=_actor(actor))
    out.print(f"deleted bank {name} and {removed:,} entries")
