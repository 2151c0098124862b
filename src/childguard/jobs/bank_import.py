# Owns the bank-import job kind: a saved hash-list upload imported into a bank in the background.
"""The `bank-import` job: the file at `<job dir>/upload` read with one of the formats
`childguard bank import` accepts (`childguard.banks.formats`) and added through the banks'
bulk path (`childguard.banks.import_records`), `CHUNK_RECORDS` records per transaction, so
that progress and cancellation are seen between chunks and a worker that dies loses at most
one chunk. Ingestion is idempotent: a chunk imported twice (a retry, a resumed job, the same
file again) adds nothing the second time.

Invalid lines are left out and counted; the first `INVALID_SHOWN` are in the result with
their line (or record) numbers. A file that cannot be read at all (unknown format, broken
JSON, a missing CSV column, 64-digit plain hashes with no `signal_type`) fails the job with
the reader's message; chunks before the fault stay imported.

Params: `bank` (name), `format` (plain, te, csv, vics; guessed when absent), `signal_type`,
`columns` (a CSV column map, `value=Hash,...`), `source` (default: the upload's file name),
`organisation`, `filename`.
"""

from __future__ import annotations

import io
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from childguard.banks import BankNotFound, InvalidRecord, get_bank, import_records
from childguard.banks.bulk import ImportBusy
from childguard.banks.formats import FORMATS, ReadOptions, get_format, guess_format
from childguard.banks.formats.base import HashListFormat
from childguard.banks.formats.csv_mapped import parse_column_map
from childguard.banks.formats.guard import decode_error, open_list
from childguard.errors import InputFormatError
from childguard.jobs.registry import JobContext, JobFailed, register
from childguard.signals import get_signal_type

KIND = "bank-import"
UPLOAD_NAME = "upload"
CHUNK_RECORDS = 100_000
INVALID_SHOWN = 20
# How long a chunk waits for another import writing to the same store (SQLite) or bank.
LOCK_WAIT_S = 600.0


class _Counted(io.RawIOBase):
    """Counts the bytes read through it (progress over the upload)."""

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


def check_params(params: dict[str, Any]) -> dict[str, Any]:
    """The import's params checked before it is queued (format, signal type, column map);
    InputFormatError saying what is wrong."""
    out = {k: v for k, v in params.items() if v not in (None, "")}
    if "format" in out:
        out["format"] = get_format(str(out["format"])).name
    if "signal_type" in out:
        try:
            out["signal_type"] = get_signal_type(str(out["signal_type"])).name
        except ValueError as exc:
            raise InputFormatError(str(exc)) from None
    if "columns" in out:
        parse_column_map(str(out["columns"]))
    if "format" not in out and "filename" in out:
        suffix = Path(str(out["filename"])).suffix.lower()
        for fmt in FORMATS.values():
            if suffix and suffix in fmt.suffixes and fmt.name != "plain":
                out["format"] = fmt.name
    return out


def _format(path: Path, params: dict[str, Any]) -> HashListFormat:
    return get_format(str(params["format"])) if params.get("format") else guess_format(path)


def run_bank_import(ctx: JobContext) -> dict[str, Any]:
    """Import the job's upload into its bank; the counts and the first invalid lines."""
    params = ctx.params
    path = ctx.workdir / UPLOAD_NAME
    if not path.is_file():
        raise JobFailed("the upload of this import is gone; send the file again")
    try:
        bank = get_bank(ctx.store, str(params["bank"]))
        chosen = _format(path, params)
        columns = parse_column_map(str(params["columns"])) if params.get("columns") else None
    except (InputFormatError, BankNotFound, KeyError) as exc:
        raise JobFailed(str(exc)) from None
    options = ReadOptions(signal_type=params.get("signal_type"), column_map=columns)
    source = params.get("source") or params.get("filename") or "api:import"
    total = path.stat().st_size
    read = added = present = invalid = 0
    invalid_first: list[dict[str, Any]] = []
    ctx.progress(0, total)
    with path.open("rb") as raw:
        counter = _Counted(raw)
        try:
            text, encoding = open_list(counter)
        except InputFormatError as exc:
            raise JobFailed(f"{chosen.name} list: {exc}") from None
        records = chosen.read(text, options)
        try:
            while True:
                chunk = list(islice(records, CHUNK_RECORDS))
                if not chunk:
                    break
                result = import_records(
                    ctx.store,
                    bank.id,
                    chunk,
                    actor=ctx.job.created_by,
                    skip_invalid=True,
                    source=str(source),
                    organisation=params.get("organisation"),
                    audit_details={"job": ctx.job.id, "format": chosen.name},
                    prevalidated=True,
                    wait=LOCK_WAIT_S,
                )
                read += result.read
                added += result.added
                present += result.already_present
                invalid += len(result.skipped)
                invalid_first.extend(_described(result.skipped, INVALID_SHOWN - len(invalid_first)))
                ctx.progress(counter.count, total)
        except InputFormatError as exc:
            raise JobFailed(f"{chosen.name} list: {exc}") from None
        except ImportBusy as exc:
            raise JobFailed(str(exc)) from None
        except UnicodeDecodeError as exc:
            raise JobFailed(str(decode_error(path, encoding, exc))) from None
    return {
        "bank": bank.name,
        "format": chosen.name,
        "read": read,
        "added": added,
        "already_present": present,
        "invalid": invalid,
        "invalid_first": invalid_first,
    }


def _described(skipped: list[InvalidRecord], room: int) -> list[dict[str, Any]]:
    return [{s.position_kind: s.position, "reason": s.reason} for s in skipped[: max(0, room)]]


register(KIND, run_bank_import, "import a hash-list upload into a bank")
