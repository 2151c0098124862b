"""CSV hash lists with a header row; a column mapping says which column holds which field.

Fields: signal_type, value, source, organisation, original_id, classification_scheme,
classification_label, imported_at (ISO 8601), metadata (a JSON object). Columns are found by
common aliases (`hash`, `signal_str`, `type`, `category`, ...) unless mapped explicitly with
`field=Column`. Instead of a value column, a file may have one column per signal type (`md5`,
`sha1`, `pdq`, `sha256`): each non-empty cell becomes an entry. Without a signal type column
or a given type, each value's type is detected as plain lists do (32 hex digits md5, 40 sha1);
64 hex digits need the type named. Columns that map to no field are kept in each entry's
metadata, so nothing in the file is lost.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar, TextIO

from childguard.banks.formats.base import ReadOptions, WriteOptions, WriteResult
from childguard.banks.formats.guard import checked, load_json_value
from childguard.banks.records import EntryRecord, InvalidRecord
from childguard.csv_safe import safe_row, unquote_cell
from childguard.errors import InputFormatError
from childguard.signals import SIGNAL_TYPES, detect_signal_type

FIELDS = (
    "signal_type",
    "value",
    "source",
    "organisation",
    "original_id",
    "classification_scheme",
    "classification_label",
    "imported_at",
    "metadata",
)
ALIASES: dict[str, tuple[str, ...]] = {
    "signal_type": ("signal_type", "type", "hash_type", "signal type"),
    "value": ("value", "hash", "signal", "signal_value", "signal_str", "hash_value"),
    "source": ("source", "source_list", "list"),
    "organisation": ("organisation", "organization", "org"),
    "original_id": ("original_id", "id", "external_id", "media_id", "mediaid"),
    "classification_scheme": ("classification_scheme", "scheme"),
    "classification_label": ("classification_label", "label", "category", "classification"),
    "imported_at": ("imported_at", "added_at", "date_added"),
    "metadata": ("metadata", "meta"),
}


def parse_column_map(spec: str) -> dict[str, str]:
    """`value=Hash,classification_label=Cat` -> {"value": "Hash", ...}; unknown fields rejected."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        field, sep, column = part.partition("=")
        field = field.strip()
        if not sep or not column.strip():
            raise InputFormatError(f"column mapping {part!r}: want field=Column")
        if field not in FIELDS:
            raise InputFormatError(
                f"column mapping {part!r}: unknown field; fields: {', '.join(FIELDS)}"
            )
        mapping[field] = column.strip()
    return mapping


def _parse_time(text: str) -> datetime:
    """An ISO 8601 time in UTC (a time without a zone is taken as UTC); ValueError or
    OverflowError when it is none or cannot be put in UTC."""
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


class CsvFormat:
    name: ClassVar[str] = "csv"
    description: ClassVar[str] = "CSV with a header; columns mapped to fields by name or --map"
    suffixes: ClassVar[tuple[str, ...]] = (".csv",)

    def _resolve(
        self, header: list[str], options: ReadOptions
    ) -> tuple[dict[str, int], dict[str, int]]:
        """(field -> column index, signal type -> column index for per-type columns)."""
        lowered = {h.strip().lower(): i for i, h in enumerate(header)}
        exact = {h.strip(): i for i, h in enumerate(header)}
        fields: dict[str, int] = {}
        for field, column in (options.column_map or {}).items():
            idx = exact.get(column, lowered.get(column.lower()))
            if idx is None:
                raise InputFormatError(
                    f"mapped column {column!r} (for {field}) is not in the header", line=1
                )
            fields[field] = idx
        for field, names in ALIASES.items():
            if field not in fields:
                for name in names:
                    if name in lowered and lowered[name] not in fields.values():
                        fields[field] = lowered[name]
                        break
        per_type: dict[str, int] = {}
        if "value" not in fields:
            per_type = {t: lowered[t] for t in SIGNAL_TYPES if t in lowered}
            if not per_type:
                raise InputFormatError(
                    "no hash column: name one `value` or `hash`, one per type (`md5`, `sha1`, "
                    f"`pdq`, `sha256`), or map one with --map value=COLUMN; header: {header}",
                    line=1,
                )
        return fields, per_type

    def read(self, stream: TextIO, options: ReadOptions) -> Iterator[EntryRecord | InvalidRecord]:
        reader = csv.reader(stream)
        try:
            header = next(reader)
        except StopIteration:
            raise InputFormatError("empty CSV file: want a header row", line=1) from None
        except csv.Error as exc:
            raise InputFormatError(f"unreadable CSV header: {exc}", line=1) from None
        fields, per_type = self._resolve(header, options)
        used = set(fields.values()) | set(per_type.values())
        extra = [(i, h) for i, h in enumerate(header) if i not in used]
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield InvalidRecord(reader.line_num, f"malformed CSV: {exc}")
                continue
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield InvalidRecord(line, f"{len(row)} columns where the header has {len(header)}")
                continue
            yield from self._records(row, line, fields, per_type, extra, options)

    def _records(
        self,
        row: list[str],
        line: int,
        fields: dict[str, int],
        per_type: dict[str, int],
        extra: list[tuple[int, str]],
        options: ReadOptions,
    ) -> Iterator[EntryRecord | InvalidRecord]:
        def cell(field: str) -> str | None:
            idx = fields.get(field)
            text = row[idx].strip() if idx is not None else ""
            return text or None

        metadata: dict[str, Any] | None = None
        raw_meta = cell("metadata")
        if raw_meta is not None:
            metadata, problem = load_json_value(raw_meta)
            if problem is not None:
                yield InvalidRecord(line, f"metadata {problem}")
                return
            if not isinstance(metadata, dict):
                yield InvalidRecord(line, "metadata must be a JSON object")
                return
        extras = {name: row[i] for i, name in extra if row[i].strip()}
        if extras:
            metadata = {**(metadata or {}), **extras}

        def text_cell(name: str) -> str | None:
            # A cell this format's `write` guarded against formulas reads back as it was.
            value = cell(name)
            return None if value is None else unquote_cell(value)

        imported_at = None
        raw_time = cell("imported_at")
        if raw_time is not None:
            try:
                imported_at = _parse_time(raw_time)
            except OverflowError:
                yield InvalidRecord(line, f"imported_at {raw_time!r} is out of range")
                return
            except ValueError:
                yield InvalidRecord(line, f"imported_at is not an ISO 8601 time: {raw_time!r}")
                return
        common: dict[str, Any] = {
            "source": text_cell("source"),
            "organisation": text_cell("organisation"),
            "original_id": text_cell("original_id"),
            "classification_scheme": text_cell("classification_scheme"),
            "classification_label": text_cell("classification_label"),
            "metadata": metadata,
            "imported_at": imported_at,
            "position": line,
        }
        if per_type:
            values = [(t, row[i].strip()) for t, i in per_type.items() if row[i].strip()]
            if not values:
                yield InvalidRecord(line, f"no hash in any of the columns {sorted(per_type)}")
            for type_name, hash_value in values:
                yield checked(EntryRecord(type_name, hash_value, **common))
            return
        value = cell("value")
        if value is None:
            yield InvalidRecord(line, "empty hash value")
            return
        signal_type = cell("signal_type") or options.signal_type or detect_signal_type(value)
        if signal_type is None:
            if len(value) == 64 and detect_signal_type(value[:32]) is not None:
                raise InputFormatError(
                    "64 hex digits could be a PDQ or a SHA-256 hash; say which with a "
                    "`signal_type` column or --signal-type pdq|sha256",
                    line=line,
                )
            yield InvalidRecord(
                line,
                f"not a hash of a known type: {value[:80]!r} (md5 and sha1 are detected; "
                "name others in a `signal_type` column or with --signal-type)",
            )
            return
        yield checked(EntryRecord(signal_type, value, **common))

    def write(
        self, records: Iterable[EntryRecord], stream: TextIO, options: WriteOptions
    ) -> WriteResult:
        writer = csv.writer(stream, lineterminator="\r\n")  # RFC 4180; quotes any \r or \n
        writer.writerow(FIELDS)
        n = 0
        for rec in records:
            writer.writerow(
                safe_row(
                    [
                        rec.signal_type,
                        rec.value,
                        rec.source or "",
                        rec.organisation or "",
                        rec.original_id or "",
                        rec.classification_scheme or "",
                        rec.classification_label or "",
                        rec.imported_at.isoformat() if rec.imported_at else "",
                        json.dumps(rec.metadata, sort_keys=True, ensure_ascii=False)
                        if rec.metadata
                        else "",
                    ]
                )
            )
            n += 1
        return WriteResult(n)
