"""The `childguard` command: a Typer app whose command groups live one per module in this package.

Exit codes (shared by every command):
  0 success; 1 some inputs failed but the job finished; 2 usage or input error;
  3 a match was found where the command treats that as a finding (see --help).
"""

from __future__ import annotations

import typer

from childguard import __version__
from childguard import log as _log

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FOUND = 3

app = typer.Typer(
    name="childguard",
    help=(
        "Protect children's images online: hash, match against banks, "
        "crawl for re-posts, run a hotline."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    _log.configure(level=log_level.upper(), json=True if log_json else None)


def _register() -> None:
    """Import the command modules; each adds its commands or sub-apps to `app`."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        if mod.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{mod.name}")


_register()


def main() -> None:
    app()
