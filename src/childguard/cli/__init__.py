# Owns the `childguard` entry point: the root command, the exit codes, and the table of command
# modules that are imported only when their command runs.
"""The `childguard` command: a Typer app whose command groups live one per module in this package.

Exit codes (shared by every command):
  0 success; 1 some inputs failed but the job finished; 2 usage or input error;
  3 a match was found where the command treats that as a finding (see --help).

A command module is imported only when its command is run (or its own --help asked for):
`childguard --help` and `--version` import none of them, so neither loads SQLAlchemy, Scrapy
or OpenCV. `COMMANDS` names each top-level command, its module and the one line that
`childguard --help` shows for it; `tests/cli/test_conventions.py` checks that line against the
command's own help, and that every `cmd_*` module is in the table.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from childguard import __version__

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FOUND = 3

# name -> (module in this package, the short help `childguard --help` shows).
COMMANDS: dict[str, tuple[str, str]] = {
    "hash": ("cmd_hash", "Hash images and videos: md5, sha1, sha256, PDQ (photos) and vPDQ..."),
    "match": ("cmd_match", "Hash PATHs and match each file against the banks."),
    "scan": ("cmd_scan", "Hash and match every file under ROOTS (and in --from-list); write..."),
    "bank": (
        "cmd_bank",
        "Manage hash banks: create, list, show, update, release, import, export, stats, delete.",
    ),
    "protect": ("cmd_protect", "Protect an organisation's published photos."),
    "org": ("cmd_protect", "Organisations that protect their photos, and their contacts."),
    "crawl": ("cmd_crawl", "Crawl watched sites for re-posted photos."),
    "sightings": ("cmd_crawl", "Sightings: where the crawler found matching images."),
    "bundle": ("cmd_bundle", "Check referral bundles."),
    "audit": ("cmd_audit", "Read the audit log: who did what to which object, and when."),
    "user": (
        "cmd_user",
        "Manage users (people who sign in): add, list, show, passwd, grant, revoke,...",
    ),
    "role": ("cmd_user", "The roles users and keys hold."),
    "key": ("cmd_key", "Manage API keys: create, list, revoke."),
    "serve": ("cmd_serve", "Serve the API."),
    "demo": ("cmd_demo", "Run the core story on this machine: an organisation registers its..."),
}


class LazyGroup(TyperGroup):
    """The root group: lists `COMMANDS` without importing them, and imports a command's module
    the first time the command is looked up to run (or to show its own help)."""

    listing = False

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _ready(self)

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        found = self.commands.get(cmd_name)
        if found is not None or cmd_name not in COMMANDS:
            return found
        short = COMMANDS[cmd_name][1]
        if self.listing:
            return TyperCommand(name=cmd_name, short_help=short, help=short)
        command = load_command(cmd_name)
        self.commands[cmd_name] = command
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.listing = False


def _ready(command: Any) -> Any:
    """`command` with its value names tidied for --help and its values coerced without
    pydantic (`childguard.cli.helptext.tidy`)."""
    from childguard.cli.helptext import tidy

    return tidy(command)


def load_command(name: str) -> Any:
    """The Click command or group of the top-level command `name`, its module imported."""
    from typer.main import get_command_from_info, get_group_from_info

    importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    for info in app.registered_commands:
        if info.name == name:
            return _ready(
                get_command_from_info(
                    info,
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode,
                )
            )
    for group in app.registered_groups:
        if group.name == name:
            return _ready(
                get_group_from_info(
                    group,
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=app.rich_markup_mode,
                    suggest_commands=app.suggest_commands,
                )
            )
    raise LookupError(f"{COMMANDS[name][0]} registers no command {name!r}")


app = typer.Typer(
    name="childguard",
    cls=LazyGroup,
    help=(
        "Protect children's images online: hash, match against banks, "
        "crawl for re-posts, run a hotline."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"childguard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    log_level: str = typer.Option("WARNING", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    log_json: bool = typer.Option(False, "--log-json", help="Force JSON log lines on stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    from childguard import log

    log.configure(level=log_level.upper(), json=True if log_json else None)


def load_all() -> None:
    """Import every command module (for tools that walk the whole command tree)."""
    for module, _short in COMMANDS.values():
        importlib.import_module(f"{__name__}.{module}")


def main() -> None:
    app()
