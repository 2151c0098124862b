# Owns what command modules share: the --db option, opening (or creating) the store, input path
# checks, the actor name for the audit log, the progress choice and the consoles that print
# outside text as it is.
"""Options and helpers that several command modules share: the --db option, opening the store
with errors turned into exit code 2 (a command that only reads refuses a store that does not
exist; one that creates says on stderr when it made one), the check that input paths exist, the
actor name for the audit log, and the progress choice.

Every command prints through `out` and `err` (or `console_for`), Rich consoles with markup and
highlighting off: names, paths, URLs, titles and sources come from outside, and a bank named
`[/x]` or a path holding `[/b]` must print as it is, never be read as Rich markup. Styled words
are `Text` objects (`styled`). Heavy libraries (SQLAlchemy, the store) are imported when a
command opens the store, not when the CLI starts; Rich when a command first prints through
`out` or `err` (they are made on first use), so `hash` never loads it unless it draws a bar."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

import typer

from childguard.cli import EXIT_USAGE
from childguard.errors import ChildguardError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from childguard.store import Store


def console_for(dest: IO[str] | None = None, *, stderr: bool = False) -> Console:
    """A console that prints text as it is (no markup, no highlighting) to `dest`, else to
    standard output (or standard error); its width is the terminal's, else COLUMNS, else 80."""
    from rich.console import Console

    if dest is not None and dest is not sys.stdout:
        return Console(file=dest, markup=False, highlight=False, soft_wrap=False)
    return Console(stderr=stderr, markup=False, highlight=False)


out: Console
err: Console
_consoles: dict[str, Console] = {}


def _console(name: str) -> Console:
    if name not in _consoles:
        _consoles[name] = console_for(stderr=name == "err")
    return _consoles[name]


def __getattr__(name: str) -> Console:
    """`out` (standard output) and `err` (standard error), each made on its first use."""
    if name not in ("out", "err"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain parts and (text, style) parts; no part is read as markup."""
    from rich.text import Text

    return Text.assemble(*parts)


DbOption = typer.Option(
    None,
    "--db",
    help="SQLite file path or database URL (sqlite:////abs/path.db, postgresql+psycopg://...); "
    "default: CHILDGUARD_DB, else childguard.db in the data dir (CHILDGUARD_HOME).",
)
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# What a read command's refusal of a missing store suggests.
CREATE_HINT = (
    "check --db (or CHILDGUARD_DB); a new store is made by `childguard bank create`, "
    "`org add`, `user add`, `key create` or `serve`"
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")
ProgressOption = typer.Option(
    None,
    "--progress/--no-progress",
    help="Show a progress bar (default: only when stderr is a terminal).",
)
# The options of every command that hashes files (hash, match, scan, protect register).
WorkersOption = typer.Option(
    None, "--workers", "-j", min=1, help="Hashing processes (default: all cores)."
)
ArchivesOption = typer.Option(
    True,
    "--archives/--no-archives",
    help="Hash the members of .zip files (default); --no-archives: leave zips out.",
)


def actor_name(actor: str | None = None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def want_progress(progress: bool | None, *, to_stdout: bool = False) -> bool:
    """The progress choice: `--progress`/`--no-progress` when given, else a bar only when
    stderr is a terminal, and (for a command whose records go to standard output) only when
    standard output is one too: never when the records are piped."""
    if progress is not None:
        return progress
    return sys.stderr.isatty() and (not to_stdout or sys.stdout.isatty())


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise."""
    _console("err").print(styled(("error:", "red"), f" {message}"), soft_wrap=True)
    return typer.Exit(code)


def require_paths(paths: Iterable[Path]) -> None:
    """End the command with exit code 2 when an input path does not exist, naming it."""
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise fail(f"no such file or folder: {', '.join(missing)}")


def _check_new_file(db: str | None) -> None:
    """Refuse to make a new SQLite file whose name does not say it is one (`--db "not a url"`,
    `--db hotline`): a mistyped option would otherwise leave a stray file."""
    from childguard import config

    try:
        path = config.sqlite_path(config.database_url(db))
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    if path is None or path.exists() or path.suffix.lower() in SQLITE_SUFFIXES:
        return
    raise fail(
        f"refusing to make a new store at {path}: a new SQLite file's name ends in "
        f"{', '.join(SQLITE_SUFFIXES)} (or give a URL: {config.STORE_FORMS})"
    )


@contextmanager
def store_or_exit(db: str | None, *, create: bool = False) -> Iterator[Store]:
    """Open the store; any childguard error ends the command with exit code 2 and the reason.

    Without `create` (commands that read or change what is there) a store that does not exist
    is refused, naming where it was looked for, and nothing is written; with it (commands
    that make the first bank, organisation, user or key) a new store may be made: when the
    command succeeds, `created a new store at ...` is said on stderr; when it fails, a new
    SQLite file is removed again (a new PostgreSQL schema stays)."""
    from childguard.store import open_store
    from childguard.store.db import StoreMissing

    if create:
        _check_new_file(db)
    try:
        store = open_store(db, create=create)
    except StoreMissing as exc:
        raise fail(f"{exc}{_relative_note(db)}; {CREATE_HINT}") from None
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    succeeded = False
    try:
        yield store
        succeeded = True
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    except typer.Exit as exc:
        succeeded = exc.exit_code == 0
        raise
    finally:
        store.close()
        if store.created:
            _created(store, db, kept=succeeded)


def _relative_note(db: str | None) -> str:
    """For `sqlite:///relative/path`: that it was taken from the working folder."""
    value = db or os.environ.get("CHILDGUARD_DB") or ""
    if value.startswith("sqlite:///") and not value.startswith("sqlite:////"):
        return (
            f" ({value} has three slashes: a path relative to the working folder; "
            "an absolute one takes four, sqlite:////ABSOLUTE/PATH.db)"
        )
    return ""


def _created(store: Store, store_arg: str | None, *, kept: bool) -> None:
    """Say where a new store was made, or remove a new SQLite file the command failed in."""
    from childguard import config

    path = config.sqlite_path(store.url)
    if kept:
        where = str(path) if path else store.engine.url.render_as_string(hide_password=True)
        note = _relative_note(store_arg)
        _console("err").print(f"created a new store at {where}{note}", soft_wrap=True)
    elif path is not None:
        for leftover in (
            path,
            path.with_name(path.name + "-wal"),
            path.with_name(path.name + "-shm"),
        ):
            leftover.unlink(missing_ok=True)
