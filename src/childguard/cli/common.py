"""Options and helpers that several command modules share: the --db option, opening the store
with errors turned into exit code 2, the actor name for the audit log, and the progress choice."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from childguard.cli import EXIT_USAGE
from childguard.errors import ChildguardError
from childguard.store import Store, open_store

err = Console(stderr=True)

DbOption = typer.Option(
    None, "--db", help="Database URL or SQLite path (default: CHILDGUARD_DB or the data dir)."
)
JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")
ProgressOption = typer.Option(
    None,
    "--progress/--no-progress",
    help="Show a progress bar (default: only when stderr is a terminal).",
)


def actor_name(actor: str | None = None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name in some containers
        return "cli"


def want_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print `error: message` on stderr and return the Exit to raise."""
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def store_or_exit(db: str | None) -> Iterator[Store]:
    """Open the store; any childguard error ends the command with exit code 2 and the reason."""
    try:
        store = open_store(db)
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    try:
        yield store
    except ChildguardError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
