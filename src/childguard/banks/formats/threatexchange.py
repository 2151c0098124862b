"""python-threatexchange `local_file` lists: one `<signal_type> <hash>` pair per line.

Like threatexchange's LocalFileSignalExchangeAPI, a line without a type takes the type given in
the options. threatexchange's `video_md5` is read as our `md5`. A `vpdq` signal string is a JSON
list that may hold spaces (threatexchange writes `", "` between frames), so a value that starts
with `[` or `{` runs to the end of the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar, TextIO

from childguard.banks.formats.base import ReadOptions, WriteOptions, WriteResult
from childguard.banks.formats.guard import checked
from childguard.banks.records import EntryRecord, InvalidRecord

TYPE_ALIASES = {
    "video_md5": "md5",
    "photo_md5": "md5",
    "pdq_hash": "pdq",
    "video_vpdq": "vpdq",
    "hash_video_vpdq": "vpdq",
}


class ThreatExchangeFormat:
    name: ClassVar[str] = "te"
    description: ClassVar[str] = "python-threatexchange local_file: `<signal_type> <hash>` per line"
    suffixes: ClassVar[tuple[str, ...]] = (".te",)

    def read(self, stream: TextIO, options: ReadOptions) -> Iterator[EntryRecord | InvalidRecord]:
        for lineno, line in enumerate(stream, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            signal_type, _, value = text.partition(" ")
            value = value.strip()
            if text.startswith(("[", "{")):  # a bare JSON signal string (vpdq)
                value = ""
            if not value:
                if options.signal_type is None:
                    yield InvalidRecord(lineno, f"want `<signal_type> <hash>`, got {text[:80]!r}")
                    continue
                signal_type, value = options.signal_type, text
            signal_type = TYPE_ALIASES.get(signal_type.lower(), signal_type)
            if " " in value and not value.startswith(("[", "{")):
                yield InvalidRecord(lineno, f"extra fields after the hash: {value[:80]!r}")
                continue
            yield checked(EntryRecord(signal_type, value, position=lineno))

    def write(
        self, records: Iterable[EntryRecord], stream: TextIO, options: WriteOptions
    ) -> WriteResult:
        n = 0
        for rec in records:
            stream.write(f"{rec.signal_type} {rec.value}\n")
            n += 1
        return WriteResult(n)
