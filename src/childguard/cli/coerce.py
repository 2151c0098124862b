# Owns how the command line's values are turned into Python values without loading pydantic.
"""Plain coercion of command-line values for the kinds of parameter childguard uses.

Typer turns each value into its Python type through a pydantic `TypeAdapter`, built the first
time a parameter is processed: importing pydantic and building the adapters costs about 0.15 s
of every start, more than a small `childguard hash` spends hashing. `plain_coercion(param)`
gives a Typer parameter of one of the simple kinds below (text, whole and decimal numbers with
their bounds, paths, enums, lists of text or paths) a coercion that does the same in plain
Python, through Typer's own path and choice checks; an option left out (None) needs no
coercion at all, of any kind. Any value it is not sure of (a number
written with a sign or spaces, a number out of bounds, a path that must exist and does not,
a choice not on the list) goes to Typer's pydantic coercion, so that errors, and anything
unusual, come out exactly as Typer writes them; so does every value of any other kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

from typer._coercion import RuntimeParam, TypeDescriptor, build_runtime_param
from typer._param_types import coerce_cli_choice, coerce_cli_path, routes_to_path

_WHOLE = re.compile(r"0|[1-9][0-9]{0,17}")
_DECIMAL = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?")

Leaf = Callable[[Any, Any, Any], Any]


class _Unsure(Exception):
    """A value the plain coercion leaves to Typer's."""


@dataclass(frozen=True)
class PlainRuntimeParam(RuntimeParam):
    """Coercion by `leaf` (each item of a list with `many`); what it is unsure of goes to
    Typer's coercion for `descriptor`."""

    leaf: Leaf
    many: bool
    descriptor: TypeDescriptor

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        try:
            if self.many:
                items = value if isinstance(value, (list, tuple)) else [value]
                return [self.leaf(item, param, ctx) for item in items]
            return self.leaf(value, param, ctx)
        except Exception:
            typer_own = build_runtime_param(self.descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)


def _unsure(_value: Any, _param: Any, _ctx: Any) -> Any:
    raise _Unsure


def _flag(value: Any, _param: Any, _ctx: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise _Unsure


def _text(value: Any, _param: Any, _ctx: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Unsure


def _number(kind: type[int] | type[float], info: Any) -> Leaf:
    pattern = _WHOLE if kind is int else _DECIMAL
    exact = (int,) if kind is int else (int, float)

    def leaf(value: Any, _param: Any, _ctx: Any) -> Any:
        written = isinstance(value, str) and pattern.fullmatch(value) is not None
        if not written and type(value) not in exact:
            raise _Unsure
        number = kind(value)
        if (info.min is not None and number < info.min) or (
            info.max is not None and number > info.max
        ):
            raise _Unsure
        return number

    return leaf


def _choice(choices: tuple[Any, ...], case_sensitive: bool) -> Leaf:
    def leaf(value: Any, _param: Any, ctx: Any) -> Any:
        return coerce_cli_choice(value, choices=choices, case_sensitive=case_sensitive, ctx=ctx)

    return leaf


def _path(path_type: type[Path], info: Any) -> Leaf:
    def leaf(value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and value:
            value = path_type(value)
        elif not isinstance(value, path_type):
            raise _Unsure
        return coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)

    return leaf


def _leaf_for(annotation: Any, info: Any) -> Leaf:
    """The plain coercion of one value of `annotation` (`_unsure` of every value where Typer's
    must do it: a parser, a clamped number, any other kind)."""
    if info.parser is not None:
        return _unsure
    if annotation is bool:
        return _flag
    if annotation is str:
        return _text
    if annotation is int or annotation is float:
        return _unsure if info.clamp else _number(annotation, info)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice(tuple(annotation), info.case_sensitive)
    if routes_to_path(annotation, info):
        path_type = info.path_type or annotation
        if isinstance(path_type, type) and issubclass(path_type, Path):
            return _path(path_type, info)
    return _unsure


def plain_coercion(param: Any) -> None:
    """Give a Typer parameter the plain coercion. A parameter left out (None: an option not
    given) then never builds Typer's; of a kind without one (a file, a parser), every value
    given goes to Typer's."""
    descriptor = getattr(param, "type_descriptor", None)
    if not isinstance(descriptor, TypeDescriptor):
        return
    if getattr(param, "_runtime_param", None) is not None:
        return
    annotation, many = descriptor.annotation, False
    if descriptor.file_annotation is not None:
        leaf: Leaf = _unsure
    else:
        if get_origin(annotation) is list:
            (annotation,) = get_args(annotation)
            many = True
        leaf = _leaf_for(annotation, descriptor.parameter_info)
    param._runtime_param = PlainRuntimeParam(
        parameter_info=descriptor.parameter_info,
        annotation=descriptor.annotation,
        leaf=leaf,
        many=many,
        descriptor=descriptor,
    )
