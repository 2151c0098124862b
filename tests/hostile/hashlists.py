"""Malformed hash lists in every format `childguard bank import` reads, generated from a seed.

`hostile_hash_lists(seed, count)` yields `HostileList`s: the bytes of a file, the name it is
saved under (its suffix picks the format when `fmt` is None) and the import options. Each is
one of the classes below applied to a valid list of a random format (plain, te, csv, VICS
Media or Cases):

- truncated at a random byte, byte flips, a zeroed run of bytes;
- bad encodings: invalid UTF-8 (stray continuation bytes, overlong forms, encoded
  surrogates), UTF-16 with a byte order mark (valid, odd-length, a lone surrogate), UTF-16
  without one, UTF-32, byte order marks in the middle;
- huge fields: a 5,000-digit number, a 200,000-character cell or line, 5,000-digit MediaID
  and Category;
- deep nesting: JSON of 100,000 levels as the document, inside a record, in CSV metadata and
  in a vPDQ value;
- wrong types: a hash as a number or a list, Category as a float, a bool or a list, `value`
  not a list, the document a list, records that are strings;
- JSON duplicate keys, NaN and Infinity, 1e999, lone surrogate escapes;
- NUL characters, CRLF / CR / LF mixes, blank and comment lines;
- imported_at at the edges of what a time can be (year 9999 with an offset, year 1, garbage).

Everything is synthetic: hashes are digests of counters.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

VICS_CONTEXT = (
    "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#{container}"
)
SUFFIX = {"plain": ".txt", "te": ".te", "csv": ".csv", "vics": ".json"}


@dataclass(frozen=True)
class HostileList:
    """One malformed (or surprising) hash list and how to import it."""

    name: str
    data: bytes
    kind: str  # the class of hostility, for messages
    fmt: str | None = None
    options: dict[str, str] = field(default_factory=dict)


def md5(i: int) -> str:
    return hashlib.md5(f"hostile-{i}".encode()).hexdigest()


def sha1(i: int) -> str:
    return hashlib.sha1(f"hostile-{i}".encode()).hexdigest()


def pdq(i: int) -> str:
    return hashlib.sha256(f"hostile-{i}".encode()).hexdigest()


def _plain(rng: random.Random, n: int) -> str:
    lines = ["# a plain list"] + [
        (md5(i) if rng.random() < 0.6 else sha1(i)) for i in range(rng.randrange(1000), n + 1000)
    ]
    return "\n".join(lines) + "\n"


def _te(rng: random.Random, n: int) -> str:
    start = rng.randrange(1000)
    return "".join(
        f"pdq {pdq(i)}\n" if i % 2 else f"md5 {md5(i)}\n" for i in range(start, start + n)
    )


def _csv(rng: random.Random, n: int) -> str:
    start = rng.randrange(1000)
    rows = ["signal_type,value,source,classification_label,imported_at,metadata,note"]
    for i in range(start, start + n):
        meta = json.dumps({"n": i}).replace('"', '""')
        rows.append(f'md5,{md5(i)},list-{i % 3},A,2024-06-01T10:00:00+00:00,"{meta}",x{i}')
    return "\r\n".join(rows) + "\r\n"


def _vics_doc(rng: random.Random, n: int, container: str = "Media") -> dict[str, object]:
    start = rng.randrange(1000)
    media = [
        {"MediaID": i, "Category": i % 4, "MD5": md5(i).upper(), "SHA1": sha1(i).upper()}
        for i in range(start, start + n)
    ]
    context = VICS_CONTEXT.format(profile=rng.choice(["US", "UK", "Default"]), container=container)
    if container == "Cases":
        return {"@odata.context": context, "value": [{"CaseID": "c-1", "Media": media}]}
    return {"@odata.context": context, "value": media}


def _vics(rng: random.Random, n: int) -> str:
    return json.dumps(_vics_doc(rng, n, rng.choice(["Media", "Cases"])), indent=1)


BASES: dict[str, Callable[[random.Random, int], str]] = {
    "plain": _plain,
    "te": _te,
    "csv": _csv,
    "vics": _vics,
}


def _base(rng: random.Random) -> tuple[str, str]:
    fmt = rng.choice(list(BASES))
    return fmt, BASES[fmt](rng, rng.randrange(1, 30))


# --- byte-level mutations of any format ---------------------------------------------------


def truncated(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    data = text.encode()
    return HostileList(f"trunc{SUFFIX[fmt]}", data[: rng.randrange(len(data))], "truncated")


def flipped(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    data = bytearray(text.encode())
    for _ in range(rng.randrange(1, 8)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return HostileList(f"flip{SUFFIX[fmt]}", bytes(data), "byte flips")


def zeroed(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    data = bytearray(text.encode())
    at = rng.randrange(len(data))
    span = rng.randrange(1, 64)
    data[at : at + span] = bytes(len(data[at : at + span]))
    return HostileList(f"zero{SUFFIX[fmt]}", bytes(data), "zeroed run")


BAD_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"]


def bad_utf8(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    data = text.encode()
    at = rng.randrange(len(data) + 1)
    return HostileList(f"utf8{SUFFIX[fmt]}", data[:at] + rng.choice(BAD_UTF8) + data[at:], "utf-8")


def utf16(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    codec = rng.choice(["utf-16-le", "utf-16-be"])
    bom = codecs.BOM_UTF16_LE if codec == "utf-16-le" else codecs.BOM_UTF16_BE
    body = text.encode(codec)
    variant = rng.choice(["valid", "odd", "surrogate", "no-bom"])
    if variant == "valid":
        data = bom + body
    elif variant == "odd":
        data = bom + body + b"\x00"
    elif variant == "surrogate":
        at = rng.randrange(len(body) // 2 + 1) * 2
        lone = "\ud800".encode(codec, "surrogatepass")
        data = bom + body[:at] + lone + body[at:]
    else:
        data = body
    return HostileList(f"utf16{SUFFIX[fmt]}", data, f"utf-16 {variant}")


def other_boms(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    data = text.encode()
    variant = rng.choice(["utf32", "double", "middle"])
    if variant == "utf32":
        data = codecs.BOM_UTF32_LE + text.encode("utf-32-le")
    elif variant == "double":
        data = codecs.BOM_UTF8 * 2 + data
    else:
        lines = data.split(b"\n")
        at = rng.randrange(len(lines))
        lines[at] = codecs.BOM_UTF8 + lines[at]
        data = b"\n".join(lines)
    return HostileList(f"bom{SUFFIX[fmt]}", data, f"bom {variant}")


def nuls(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    lines = text.split("\n")
    at = rng.randrange(len(lines))
    cut = rng.randrange(len(lines[at]) + 1)
    lines[at] = lines[at][:cut] + "\x00" * rng.randrange(1, 4) + lines[at][cut:]
    return HostileList(f"nul{SUFFIX[fmt]}", "\n".join(lines).encode(), "NUL")


def newlines(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    parts = text.replace("\r\n", "\n").split("\n")
    out = ""
    for part in parts:
        out += part + rng.choice(["\n", "\r\n", "\r", "\n\n", "\r\r\n", "\n# comment\n"])
    return HostileList(f"eol{SUFFIX[fmt]}", out.encode(), "line endings")


# --- format-aware hostility -----------------------------------------------------------------

DEEP = 100_000


def _doc(context: str, items: str) -> str:
    """A VICS document around the JSON text of its `value` items."""
    return '{"@odata.context": "' + context + '", "value": [' + items + "]}"


def deep_json(rng: random.Random) -> HostileList:
    variant = rng.choice(["document", "value", "record", "field", "case"])
    context = VICS_CONTEXT.format(profile="US", container="Media")
    nest = "[" * DEEP + "]" * DEEP
    if variant == "document":
        text = nest
    elif variant == "value":
        text = json.dumps({"@odata.context": context, "value": []})[:-2] + nest + "}"
    elif variant == "record":
        good = json.dumps({"MD5": md5(1)})
        text = _doc(context, f"{good}, {nest}")
    elif variant == "field":
        depth = rng.choice([40, 600, DEEP])
        text = _doc(context, f'{{"MD5": "{md5(2)}", "Notes": {"[" * depth}1{"]" * depth}}}')
    else:
        cases = VICS_CONTEXT.format(profile="UK", container="Cases")
        text = _doc(cases, f'{{"CaseID": {"[" * DEEP}1{"]" * DEEP}, "Media": []}}')
    return HostileList("deep.json", text.encode(), f"deep json {variant}")


def deep_elsewhere(rng: random.Random) -> HostileList:
    depth = rng.choice([50, 2_000, DEEP])
    if rng.random() < 0.5:
        meta = ("[" * depth + "]" * depth).replace('"', '""')
        text = f'value,metadata\n{md5(3)},"{{""x"": {meta}}}"\n'
        return HostileList("deep.csv", text.encode(), f"deep csv metadata {depth}")
    text = f"vpdq {'[' * depth}{']' * depth}\nmd5 {md5(4)}\n"
    return HostileList("deep.te", text.encode(), f"deep vpdq {depth}")


def huge_fields(rng: random.Random) -> HostileList:
    digits = "9" * 5000
    context = VICS_CONTEXT.format(profile="US", container="Media")
    variant = rng.choice(
        [
            "media-id",
            "media-id-str",
            "category",
            "category-str",
            "float",
            "csv-cell",
            "plain-line",
            "te-line",
            "csv-label",
        ]
    )
    if variant.startswith(("media-id", "category", "float")):
        key = {"media-id": "MediaID", "category": "Category", "float": "Size"}[
            variant.removesuffix("-str")
        ]
        value = {"float": digits + ".5e999", "media-id": digits, "category": digits}.get(
            variant, f'"{digits}"'
        )
        text = _doc(context, f'{{"MD5": "{md5(5)}", "{key}": {value}}}')
        return HostileList("huge.json", text.encode(), f"huge {variant}")
    if variant == "csv-cell":
        text = f"value,note\n{md5(6)},{'x' * 200_000}\n"
        return HostileList("huge.csv", text.encode(), "huge csv cell")
    if variant == "csv-label":
        text = f"value,label,source,organisation,id\n{md5(7)},{digits},{digits},{digits},{digits}\n"
        return HostileList("huge.csv", text.encode(), "huge csv fields")
    if variant == "te-line":
        text = f"md5 {md5(8)}\nmd5 {'a' * 200_000}\n"
        return HostileList("huge.te", text.encode(), "huge te line")
    text = f"{md5(9)}\n{'f' * 200_000}\n"
    return HostileList("huge.txt", text.encode(), "huge plain line")


def wrong_types(rng: random.Random) -> HostileList:
    doc = _vics_doc(rng, 3)
    media = doc["value"]
    assert isinstance(media, list)
    variant = rng.choice(
        [
            "md5-number",
            "md5-list",
            "md5-null",
            "category-float",
            "category-bool",
            "category-list",
            "category-negative",
            "category-superscript",
            "media-id-object",
            "value-object",
            "document-list",
            "record-string",
            "context-number",
            "cases-media-object",
        ]
    )
    first = media[0]
    assert isinstance(first, dict)
    if variant == "md5-number":
        first["MD5"] = 12345
    elif variant == "md5-list":
        first["MD5"] = [md5(1)]
    elif variant == "md5-null":
        first["MD5"] = None
        first["SHA1"] = None
    elif variant == "category-float":
        first["Category"] = 1.5
    elif variant == "category-bool":
        first["Category"] = True
    elif variant == "category-list":
        first["Category"] = [1]
    elif variant == "category-negative":
        first["Category"] = -3
    elif variant == "category-superscript":
        first["Category"] = "\u00b2"
    elif variant == "media-id-object":
        first["MediaID"] = {"a": [1, 2, {"b": None}]}
    elif variant == "value-object":
        doc["value"] = {"MD5": md5(1)}
    elif variant == "document-list":
        return HostileList("types.json", json.dumps([doc]).encode(), "document list")
    elif variant == "record-string":
        media[1] = md5(2)
    elif variant == "context-number":
        doc["@odata.context"] = 2.0
    else:
        cases = VICS_CONTEXT.format(profile="US", container="Cases")
        doc = {"@odata.context": cases, "value": [{"Media": {"MD5": md5(3)}}]}
    return HostileList("types.json", json.dumps(doc).encode(), f"wrong type {variant}")


def json_oddities(rng: random.Random) -> HostileList:
    context = VICS_CONTEXT.format(profile="US", container="Media")
    variant = rng.choice(
        ["duplicate-keys", "nan", "infinity", "1e999", "surrogate", "surrogate-key", "trailing"]
    )
    record = {
        "duplicate-keys": f'{{"MD5": "{md5(1)}", "MD5": "{md5(2)}", "Category": 1, "Category": 2}}',
        "nan": f'{{"MD5": "{md5(3)}", "Score": NaN}}',
        "infinity": f'{{"MD5": "{md5(4)}", "Score": -Infinity}}',
        "1e999": f'{{"MD5": "{md5(5)}", "Score": 1e999}}',
        "surrogate": f'{{"MD5": "{md5(6)}", "Notes": "a\\ud800b"}}',
        "surrogate-key": f'{{"MD5": "{md5(7)}", "\\udfff": 1}}',
        "trailing": f'{{"MD5": "{md5(8)}"}}], "value": []}} garbage',
    }[variant]
    text = _doc(context, record)
    if variant == "trailing":
        text = text[:-2]
    return HostileList("odd.json", text.encode(), f"json {variant}")


def times(rng: random.Random) -> HostileList:
    value = rng.choice(
        [
            "9999-12-31T23:59:59-01:00",
            "9999-12-31T23:59:59",
            "9999-12-31T23:59:59Z",
            "0001-01-01T00:00:00+01:00",
            "0001-01-01T00:00:00",
            "2024-13-01T00:00:00",
            "not a time",
            "2024-06-01T10:00:00+25:00",
            "1" * 5000,
        ]
    )
    text = f"value,imported_at\n{md5(10)},{value}\n{md5(11)},2024-06-01T10:00:00Z\n"
    return HostileList("times.csv", text.encode(), f"imported_at {value[:30]}")


def csv_oddities(rng: random.Random) -> HostileList:
    variant = rng.choice(
        [
            "no-header",
            "unclosed-quote",
            "ragged",
            "duplicate-columns",
            "only-header",
            "metadata-array",
            "metadata-nan",
            "type-unknown",
            "sha256-untyped",
        ]
    )
    text = {
        "no-header": "",
        "unclosed-quote": f'value,note\n{md5(1)},"never closed\n{md5(2)},x\n',
        "ragged": f"value,note\n{md5(3)},a,b,c\n{md5(4)}\n",
        "duplicate-columns": f"value,value,hash\n{md5(5)},{md5(6)},{md5(7)}\n",
        "only-header": "value,source\n",
        "metadata-array": f'value,metadata\n{md5(8)},"[1, 2]"\n',
        "metadata-nan": f'value,metadata\n{md5(9)},"{{""a"": NaN}}"\n',
        "type-unknown": f"signal_type,value\nmd6,{md5(10)}\n",
        "sha256-untyped": f"value\n{pdq(11)}\n",
    }[variant]
    return HostileList("odd.csv", text.encode(), f"csv {variant}")


def te_oddities(rng: random.Random) -> HostileList:
    variant = rng.choice(["no-type", "extra", "vpdq-garbage", "vpdq-big", "type-only", "alias"])
    text = {
        "no-type": f"{md5(1)}\n",
        "extra": f"md5 {md5(2)} trailing words\n",
        "vpdq-garbage": 'vpdq ["zz,100,0.0"]\n',
        "vpdq-big": "vpdq [" + ",".join(['"' + pdq(1) + ',100,0.0"'] * 3_000) + "]\n",
        "type-only": "md5\n",
        "alias": f"video_md5 {md5(3)}\nPDQ_HASH {pdq(4)}\n",
    }[variant]
    return HostileList("odd.te", text.encode(), f"te {variant}")


def wrong_format(rng: random.Random) -> HostileList:
    fmt, text = _base(rng)
    other = rng.choice([f for f in BASES if f != fmt])
    return HostileList(f"wrong{SUFFIX[fmt]}", text.encode(), f"{fmt} read as {other}", fmt=other)


GENERATORS: tuple[Callable[[random.Random], HostileList], ...] = (
    truncated,
    flipped,
    zeroed,
    bad_utf8,
    utf16,
    other_boms,
    nuls,
    newlines,
    deep_json,
    deep_elsewhere,
    huge_fields,
    wrong_types,
    json_oddities,
    times,
    csv_oddities,
    te_oddities,
    wrong_format,
)


def hostile_hash_lists(seed: int = 21, count: int = 300) -> Iterator[HostileList]:
    """`count` hostile lists from `seed`, cycling through every class (so each is met)."""
    rng = random.Random(seed)
    for i in range(count):
        yield GENERATORS[i % len(GENERATORS)](rng)
