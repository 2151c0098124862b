"""The interface every hash-list format implements, and the options readers and writers take."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Protocol, TextIO

from childguard.banks.records import EntryRecord, InvalidRecord
from childguard.errors import ChildguardError


class ExportError(ChildguardError):
    """A bank's entries cannot be written in the requested format (the message says why)."""


@dataclass(frozen=True)
class ReadOptions:
    """What a reader may need besides the file: a default signal type, a CSV column mapping."""

    signal_type: str | None = None
    column_map: dict[str, str] | None = None


@dataclass(frozen=True)
class WriteOptions:
    """Writer options: the VICS profile to declare, and the VICS container (`media` or `cases`)."""

    vics_profile: str | None = None
    vics_container: str = "media"


@dataclass(frozen=True)
class WriteResult:
    written: int
    skipped: int = 0
    skipped_reason: str = ""


class HashListFormat(Protocol):
    """A file format for hash lists. Readers yield records or InvalidRecords, never half a record.

    A reader raises InputFormatError for problems that make the rest of the file unreadable
    (broken JSON, a missing CSV column); per-record problems are yielded as InvalidRecord so that
    the caller decides between rejecting the file and skipping them.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    def read(
        self, stream: TextIO, options: ReadOptions
    ) -> Iterator[EntryRecord | InvalidRecord]: ...

    def write(
        self, records: Iterable[EntryRecord], stream: TextIO, options: WriteOptions
    ) -> WriteResult: ...
