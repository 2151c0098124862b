"""Plain hash lists: one hash per line, `#` comments and blank lines ignored.

The type of each line is detected from its length (32 hex digits md5, 40 sha1) or given with
`signal_type`. 64 hex digits are PDQ or SHA-256, so such a file needs the type given.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import ClassVar, TextIO

from childguard.banks.formats.base import ExportError, ReadOptions, WriteOptions, WriteResult
from childguard.banks.formats.guard import checked
from childguard.banks.records import EntryRecord, InvalidRecord
from childguard.errors import InputFormatError, InvalidSignal
from childguard.signals import SignalType, detect_signal_type, get_signal_type

_DETECTABLE = {"md5", "sha1"}


class PlainFormat:
    name: ClassVar[str] = "plain"
    description: ClassVar[str] = "one hash per line; type detected (md5, sha1) or given"
    suffixes: ClassVar[tuple[str, ...]] = (
        ".txt",
        ".lst",
        ".list",
        ".md5",
        ".sha1",
        ".pdq",
        ".sha256",
    )

    def read(self, stream: TextIO, options: ReadOptions) -> Iterator[EntryRecord | InvalidRecord]:
        if options.signal_type:
            try:
                cls = get_signal_type(options.signal_type)
            except ValueError as exc:
                raise InputFormatError(str(exc)) from None
            yield from self._read_typed(stream, cls)
            return
        given = options.signal_type
        for lineno, line in enumerate(stream, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            signal_type = given or detect_signal_type(text)
            if signal_type is None:
                if len(text) == 64 and detect_signal_type(text[:32]) is not None:
                    raise InputFormatError(
                        "64 hex digits could be a PDQ or a SHA-256 hash; "
                        "say which with --signal-type pdq or --signal-type sha256",
                        line=lineno,
                    )
                yield InvalidRecord(lineno, f"not a hash of a known type: {text[:80]!r}")
                continue
            yield checked(EntryRecord(signal_type, text, position=lineno))

    @staticmethod
    def _read_typed(stream: TextIO, cls: type[SignalType]) -> Iterator[EntryRecord | InvalidRecord]:
        """Every line is of one given type: validated by that type directly (the bulk path;
        the records carry no other field to check)."""
        name, validate = cls.name, cls.validate
        for lineno, line in enumerate(stream, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                value = validate(text)
            except InvalidSignal as exc:
                yield InvalidRecord(lineno, str(exc))
                continue
            yield EntryRecord(name, value, position=lineno)

    def write(
        self, records: Iterable[EntryRecord], stream: TextIO, options: WriteOptions
    ) -> WriteResult:
        seen_types: set[str] = set()
        n = 0
        for rec in records:
            seen_types.add(rec.signal_type)
            if len(seen_types) > 1 and not seen_types <= _DETECTABLE:
                raise ExportError(
                    f"a plain list cannot mix signal types {sorted(seen_types)} (64-digit hashes "
                    "are ambiguous); export one type with --signal-type, or use the te or csv "
                    "format"
                )
            stream.write(rec.value + "\n")
            n += 1
        return WriteResult(n)
