# Owns moving a bank to and from hash-list files: import of a file, export to a file or stream.
"""Bank import from and export to files in a `childguard.banks.formats` format; both audited."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from childguard.banks.catalog import get_bank
from childguard.banks.entries import ImportResult, import_records
from childguard.banks.formats import (
    HashListFormat,
    ReadOptions,
    WriteOptions,
    WriteResult,
    get_format,
    guess_format,
)
from childguard.banks.formats.guard import decode_error, open_list
from childguard.banks.reads import iter_entry_records
from childguard.errors import InputFormatError
from childguard.signals import get_signal_type
from childguard.store import audit
from childguard.store.db import Store


class _CountingReader(io.RawIOBase):
    """Counts the bytes read through it, for a progress bar over a file."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n


def import_file(
    store: Store,
    bank: str | int,
    path: Path | str,
    *,
    actor: str,
    fmt: str | None = None,
    signal_type: str | None = None,
    column_map: dict[str, str] | None = None,
    skip_invalid: bool = False,
    source: str | None = None,
    organisation: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a hash-list file into a bank (one transaction; see `import_records`).

    `fmt` is plain, te, csv or vics (guessed from the file when None). `source` defaults to the
    file name (pass "" for none). `progress(bytes_read, total_bytes)` is called as the file is read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFormatError(f"{path}: no such file")
    chosen: HashListFormat = get_format(fmt) if fmt else guess_format(path)
    if signal_type is not None:
        try:
            signal_type = get_signal_type(signal_type).name
        except ValueError as exc:
            raise InputFormatError(str(exc)) from None
    total = path.stat().st_size
    with path.open("rb") as raw:
        counter = _CountingReader(raw)
        text, encoding = open_list(counter)
        records = chosen.read(text, ReadOptions(signal_type=signal_type, column_map=column_map))
        try:
            return import_records(
                store,
                bank,
                records,
                actor=actor,
                skip_invalid=skip_invalid,
                source=source if source is not None else path.name,
                organisation=organisation,
                audit_details={"file": str(path), "format": chosen.name},
                prevalidated=True,
                progress=(lambda _n: progress(counter.count, total)) if progress else None,
            )
        except UnicodeDecodeError as exc:
            raise decode_error(path, encoding, exc) from None


def export_bank(
    store: Store,
    bank: str | int,
    out: TextIO | Path | str,
    fmt: str,
    *,
    actor: str,
    signal_types: Sequence[str] | None = None,
    options: WriteOptions | None = None,
) -> WriteResult:
    """Write a bank's entries in a format to a path or text stream; the export is audited."""
    writer = get_format(fmt)
    found = get_bank(store, bank)
    records = iter_entry_records(store, found.id, signal_types=signal_types)
    opts = options or WriteOptions()
    if isinstance(out, str | Path):
        target = Path(out)
        partial = target.with_name(target.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as stream:
                result = writer.write(records, stream, opts)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)  # a failed export leaves no half-written file
    else:
        result = writer.write(records, out, opts)
    with store.session() as session:
        audit.record(
            session,
            actor=actor,
            action="bank.export",
            object_type="bank",
            object_id=found.id,
            details={
                "name": found.name,
                "format": writer.name,
                "written": result.written,
                "skipped": result.skipped,
                "target": str(out) if isinstance(out, str | Path) else "<stream>",
            },
        )
    return result
