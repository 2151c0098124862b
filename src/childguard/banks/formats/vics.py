"""Project VIC VICS JSON, data model 2.0: `Media` records carrying MD5, SHA1 and Category.

A file is an OData document::

    {"@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
     "value": [{"MediaID": 1, "Category": 1, "MD5": "...", "SHA1": "...", ...}]}

or the same with `#Cases`, where `value` holds cases and each case a `Media` list. The path
segment after `2.0.xml` is the category *profile* (US, UK, Default, ...): the same Category
number means different things under different profiles, so every entry is classified under
scheme `vics-<profile>` with the Category as its label. Each media record becomes one entry per
hash it carries (md5 and sha1, sharing `original_id` = MediaID); every other field of the record
is kept in the entry's metadata under `vics`, and export puts them back. Export writes hex
digits in upper case, as Project VIC distributes them.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, TextIO

from childguard.banks.formats.base import ExportError, ReadOptions, WriteOptions, WriteResult
from childguard.banks.formats.guard import checked, load_json, unstorable
from childguard.banks.records import FIELD_LIMITS, EntryRecord, InvalidRecord
from childguard.errors import InputFormatError

CONTEXT_TEMPLATE = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#{container}"
)
_CONTEXT_RE = re.compile(
    r"/DataModels/(?P<version>[0-9.]+)\.xml/(?P<profile>[^/]+)/\$metadata#(?P<container>\w+)"
)
SCHEME_PREFIX = "vics-"
HASH_FIELDS = {"MD5": "md5", "SHA1": "sha1"}
# A Category: a whole number of at most nine ASCII digits.
_CATEGORY_RE = re.compile(r"\s*[0-9]{1,9}\s*")
META_KEY = "vics"


def scheme_for(profile: str) -> str:
    return f"{SCHEME_PREFIX}{profile}"


def parse_context(context: str) -> tuple[str, str]:
    """(profile, container) from an `@odata.context` URL; InputFormatError if it is not VICS 2.x."""
    m = _CONTEXT_RE.search(context)
    if not m:
        raise InputFormatError(
            "@odata.context is not a VICS data model URL (want "
            f".../DataModels/2.0.xml/<profile>/$metadata#Media): {context[:200]!r}",
            record=0,
        )
    if not m["version"].startswith("2."):
        raise InputFormatError(
            f"VICS data model {m['version']} is not supported; want 2.0", record=0
        )
    return m["profile"], m["container"]


def _media_records(doc: Any) -> tuple[str, list[tuple[Any, dict[str, Any] | None]]]:
    """The profile and the flat list of (media record, its case fields or None)."""
    if not isinstance(doc, dict):
        raise InputFormatError(
            "a VICS file must be a JSON object with @odata.context and value", record=0
        )
    context = doc.get("@odata.context")
    if not isinstance(context, str):
        if "odata.metadata" in doc:
            raise InputFormatError(
                "VICS data model 1.x (odata.metadata) is not supported; want 2.0", record=0
            )
        raise InputFormatError("missing @odata.context: not a VICS 2.0 file", record=0)
    profile, container = parse_context(context)
    value = doc.get("value")
    if not isinstance(value, list):
        raise InputFormatError("`value` must be a list", record=0)
    out: list[tuple[Any, dict[str, Any] | None]] = []
    if container == "Cases":
        for case_no, case in enumerate(value, 1):
            if not isinstance(case, dict) or not isinstance(case.get("Media", []), list):
                raise InputFormatError(
                    f"case {case_no} must be an object with a Media list", record=0
                )
            case_fields = {k: v for k, v in case.items() if k != "Media"}
            out.extend((m, case_fields) for m in case.get("Media", []))
    elif container == "Media":
        out.extend((m, None) for m in value)
    else:
        raise InputFormatError(
            f"VICS container #{container} is not supported; want #Media or #Cases", record=0
        )
    return profile, out


class VicsFormat:
    name: ClassVar[str] = "vics"
    description: ClassVar[str] = (
        "Project VIC VICS JSON 2.0 (Media with MD5, SHA1, Category; profile kept)"
    )
    suffixes: ClassVar[tuple[str, ...]] = (".json",)

    def read(self, stream: TextIO, options: ReadOptions) -> Iterator[EntryRecord | InvalidRecord]:
        doc = load_json(stream.read())
        profile, media = _media_records(doc)
        scheme = scheme_for(profile)
        for number, (record, case) in enumerate(media, 1):
            yield from self._entries(number, record, case, scheme)

    def _entries(
        self, number: int, record: Any, case: dict[str, Any] | None, scheme: str
    ) -> Iterator[EntryRecord | InvalidRecord]:
        if not isinstance(record, dict):
            yield InvalidRecord(number, "a Media record must be a JSON object", "record")
            return
        problem = unstorable(record) or (unstorable(case, where="case") if case else None)
        if problem:
            yield InvalidRecord(number, problem, "record")
            return
        hashes = {t: record[f] for f, t in HASH_FIELDS.items() if record.get(f) not in (None, "")}
        if not hashes:
            yield InvalidRecord(number, "Media record has neither MD5 nor SHA1", "record")
            return
        bad = [f for f, t in HASH_FIELDS.items() if t in hashes and not isinstance(hashes[t], str)]
        if bad:
            yield InvalidRecord(number, f"{bad[0]} must be a string", "record")
            return
        category = record.get("Category")
        label: str | None = None
        if category is not None:
            if (
                isinstance(category, bool)
                or not isinstance(category, int | str)
                or not _CATEGORY_RE.fullmatch(str(category))
            ):
                yield InvalidRecord(
                    number, f"Category must be a whole number, got {category!r}", "record"
                )
                return
            label = str(int(category))
        media_id = record.get("MediaID")
        if media_id is not None and (
            not isinstance(media_id, int | str) or isinstance(media_id, bool)
        ):
            yield InvalidRecord(
                number, f"MediaID must be a string or a number, got {media_id!r:.80}", "record"
            )
            return
        if media_id is not None and len(str(media_id)) > FIELD_LIMITS["original_id"]:
            yield InvalidRecord(
                number,
                f"MediaID is longer than {FIELD_LIMITS['original_id']} characters",
                "record",
            )
            return
        rest = {
            k: v
            for k, v in record.items()
            if k not in HASH_FIELDS and k not in ("Category", "MediaID")
        }
        meta: dict[str, Any] = {"media": rest}
        if media_id is not None:
            meta["media_id"] = media_id  # keeps its JSON type (number or string) for export
        if category is not None and not isinstance(category, int):
            meta["category"] = category  # a Category given as a string is written back as one
        if case:
            meta["case"] = case
        out: list[EntryRecord] = []
        for signal_type, value in hashes.items():
            entry = checked(
                EntryRecord(
                    signal_type,
                    value,
                    original_id=None if media_id is None else str(media_id),
                    classification_scheme=scheme if label is not None else None,
                    classification_label=label,
                    metadata={META_KEY: meta},
                    position=number,
                    position_kind="record",
                )
            )
            if isinstance(entry, InvalidRecord):  # a record is imported whole or not at all
                yield entry
                return
            out.append(entry)
        yield from out

    def write(
        self, records: Iterable[EntryRecord], stream: TextIO, options: WriteOptions
    ) -> WriteResult:
        media: dict[tuple[Any, ...], dict[str, Any]] = {}
        profiles: set[str] = set()
        skipped = 0
        cases: dict[str, dict[str, Any]] = {}
        for rec in records:
            field = {v: k for k, v in HASH_FIELDS.items()}.get(rec.signal_type)
            if field is None:
                skipped += 1
                continue
            vics = (rec.metadata or {}).get(META_KEY)
            vics = vics if isinstance(vics, dict) else {}
            category: int | None = None
            if rec.classification_scheme and rec.classification_scheme.startswith(SCHEME_PREFIX):
                profiles.add(rec.classification_scheme[len(SCHEME_PREFIX) :])
                if rec.classification_label and rec.classification_label.isdigit():
                    category = int(rec.classification_label)
            case = vics.get("case") if isinstance(vics.get("case"), dict) else None
            # md5 and sha1 entries of one media record share its MediaID: group them back together.
            case_key = json.dumps(case, sort_keys=True) if case is not None else ""
            key: tuple[Any, ...] = (
                (case_key, "id", rec.original_id)
                if rec.original_id is not None
                else (case_key, "entry", rec.signal_type, rec.value)
            )
            out = media.get(key)
            if out is None:
                out = {}
                media_id = vics.get("media_id", rec.original_id)
                if media_id is not None:
                    out["MediaID"] = media_id
                if category is not None:
                    raw = vics.get("category")
                    out["Category"] = (
                        raw if raw is not None and str(raw).strip() == str(category) else category
                    )
                out.update(vics.get("media") or {})
                media[key] = out
                if case is not None:
                    cases.setdefault(case_key, case)
            out[field] = rec.value.upper()
        profile = options.vics_profile
        if profile is None:
            if len(profiles) > 1:
                raise ExportError(
                    f"entries are classified under several VICS profiles {sorted(profiles)}; "
                    "category numbers differ between profiles, so export one profile at a time"
                )
            profile = next(iter(profiles), "Default")
        elif profiles - {profile}:
            raise ExportError(
                f"entries are classified under VICS profile(s) {sorted(profiles - {profile})}, "
                f"not {profile}"
            )
        doc: dict[str, Any]
        if options.vics_container == "cases":
            by_case: dict[str, list[dict[str, Any]]] = {}
            for key, m in media.items():
                by_case.setdefault(key[0], []).append(m)
            value = []
            for case_key, items in by_case.items():
                case = cases.get(case_key) or {
                    "CaseID": str(uuid.uuid4()),
                    "SourceApplicationName": "childguard",
                }
                value.append({**case, "Media": items})
            doc = {
                "@odata.context": CONTEXT_TEMPLATE.format(profile=profile, container="Cases"),
                "value": value,
            }
        elif options.vics_container == "media":
            doc = {
                "@odata.context": CONTEXT_TEMPLATE.format(profile=profile, container="Media"),
                "value": list(media.values()),
            }
        else:
            raise ExportError(
                f"unknown VICS container {options.vics_container!r}; want media or cases"
            )
        json.dump(doc, stream, indent=1, ensure_ascii=False)
        stream.write("\n")
        return WriteResult(len(media), skipped, "VICS carries only md5 and sha1" if skipped else "")
