"""Hash-list formats, one module each: plain lists, threatexchange local_file, CSV, VICS JSON.

`get_format(name)` looks one up; `guess_format(path)` picks one from the file name and content.
"""

from __future__ import annotations

from pathlib import Path

from childguard.banks.formats.base import (
    ExportError,
    HashListFormat,
    ReadOptions,
    WriteOptions,
    WriteResult,
)
from childguard.banks.formats.csv_mapped import CsvFormat, parse_column_map
from childguard.banks.formats.guard import sniff_encoding
from childguard.banks.formats.plain import PlainFormat
from childguard.banks.formats.threatexchange import ThreatExchangeFormat
from childguard.banks.formats.vics import VicsFormat
from childguard.errors import InputFormatError

FORMATS: dict[str, HashListFormat] = {
    f.name: f for f in (PlainFormat(), ThreatExchangeFormat(), CsvFormat(), VicsFormat())
}


def get_format(name: str) -> HashListFormat:
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise InputFormatError(f"unknown format {name!r}; formats: {', '.join(FORMATS)}") from None


def format_for_output(path: Path | None) -> str:
    """The format an export to `path` is written in when none is named: the one its suffix
    says (.csv, .json, .te, .txt), else csv."""
    suffix = path.suffix.lower() if path is not None else ""
    for fmt in FORMATS.values():
        if suffix and suffix in fmt.suffixes:
            return fmt.name
    return "csv"


def guess_format(path: Path) -> HashListFormat:
    """By suffix (.csv, .json, .te), else by the first data line: `type hash` is te, else plain."""
    suffix = path.suffix.lower()
    for fmt in FORMATS.values():
        if suffix in fmt.suffixes and fmt.name != "plain":
            return fmt
    with path.open("rb") as raw:
        encoding = sniff_encoding(raw.read(4))
    with path.open("r", encoding=encoding, errors="replace") as f:
        for line in f:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            if text.startswith("{"):
                return FORMATS["vics"]
            return FORMATS["te"] if " " in text else FORMATS["plain"]
    return FORMATS["plain"]


__all__ = [
    "FORMATS",
    "CsvFormat",
    "ExportError",
    "HashListFormat",
    "PlainFormat",
    "ReadOptions",
    "ThreatExchangeFormat",
    "VicsFormat",
    "WriteOptions",
    "WriteResult",
    "format_for_output",
    "get_format",
    "guess_format",
    "parse_column_map",
]
