# Owns how options and arguments name their values in --help: words such as TEXT, PATH and
# INTEGER, and nothing after a flag; and the walk that readies every parameter of a command tree.
"""Value names in --help, and the one walk over a command tree's parameters.

Typer writes a value's Python type in angle brackets (`--db <str>`, `--dihedral <bool>`,
`paths... <list[Path]>`). `tidy` turns every parameter of a command tree into one that writes
the value's kind instead (`--db TEXT`, `PATHS... PATH`, `--format [jsonl|csv]`) and nothing
after a flag, since a flag takes no value. The same walk gives each parameter the plain
coercion of `childguard.cli.coerce` (no pydantic at start-up).
"""

from __future__ import annotations

import re
from typing import Any

from typer.core import TyperArgument, TyperOption

_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "path": "PATH",
    "file": "FILE",
    "directory": "FOLDER",
    "datetime": "DATETIME",
    "uuid": "UUID",
}
_BRACKETS = re.compile(r"<([^<>]*)>")


def value_word(typer_label: str | None) -> str:
    """`<str>` -> TEXT, `<int range>` -> INTEGER, `<list[Path]>` -> PATH, `<jsonl|csv>` ->
    [jsonl|csv]; a trailing `...` is kept."""
    if not typer_label:
        return ""
    dots = "..." if typer_label.endswith("...") else ""
    found = _BRACKETS.search(typer_label)
    inner = found.group(1) if found else typer_label.removesuffix("...")
    inner = inner.strip()
    while inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]
    inner = inner.removesuffix(" range").strip()
    if "|" in inner:
        return f"[{inner}]{dots}"
    return _WORDS.get(inner.lower(), inner.upper()) + dots


class Option(TyperOption):
    """An option whose help names its value's kind, and nothing for a flag."""

    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return ""
        if self.metavar is not None:
            return self.metavar
        return value_word(super().display_type_rich(ctx))


class Argument(TyperArgument):
    """An argument whose help names its value's kind."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return value_word(super().display_type_rich(ctx))


def tidy(command: Any) -> Any:
    """Give every parameter of `command` and its subcommands (the help option too) the value
    names above and the plain coercion; returns `command`."""
    for param in getattr(command, "params", ()):
        _tidy_param(param)
    if hasattr(command, "get_help_option") and "get_help_option" not in vars(command):
        made = command.get_help_option

        def help_option(ctx: Any) -> Any:
            return _tidy_param(made(ctx))

        command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command


def _tidy_param(param: Any) -> Any:
    from childguard.cli.coerce import plain_coercion

    plain_coercion(param)
    if type(param) is TyperOption:
        param.__class__ = Option
    elif type(param) is TyperArgument:
        param.__class__ = Argument
    return param
