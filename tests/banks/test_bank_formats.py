"""Readers and writers of each hash-list format, without a database: errors, round trips."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from childguard.banks.formats import (
    ExportError,
    ReadOptions,
    WriteOptions,
    get_format,
    guess_format,
    parse_column_map,
)
from childguard.banks.records import EntryRecord, InvalidRecord
from childguard.errors import InputFormatError


def fake_hash(kind: str, i: int) -> str:
    """A deterministic hex string of the right length for `kind`; not the hash of anything."""
    digest = hashlib.sha256(f"{kind}-{i}".encode()).hexdigest()
    return {"md5": digest[:32], "sha1": (digest * 2)[:40]}.get(kind, digest)


def read(fmt: str, text: str, **opts: object) -> list[EntryRecord | InvalidRecord]:
    return list(get_format(fmt).read(io.StringIO(text), ReadOptions(**opts)))  # type: ignore[arg-type]


def write(fmt: str, records: list[EntryRecord], **opts: object) -> str:
    buf = io.StringIO()
    get_format(fmt).write(records, buf, WriteOptions(**opts))  # type: ignore[arg-type]
    return buf.getvalue()


MD5, SHA1, PDQ = fake_hash("md5", 1), fake_hash("sha1", 1), fake_hash("pdq", 1)


# plain ----------------------------------------------------------------------------------------


def test_plain_detects_md5_and_sha1_and_canonicalises() -> None:
    recs = read("plain", f"# a comment\n\n{MD5.upper()}\n  {SHA1}  \n")
    assert [(r.signal_type, r.value, r.position) for r in recs if isinstance(r, EntryRecord)] == [
        ("md5", MD5, 3),
        ("sha1", SHA1, 4),
    ]


def test_plain_64_digits_need_a_signal_type() -> None:
    with pytest.raises(InputFormatError, match="--signal-type") as info:
        read("plain", f"{MD5}\n{PDQ}\n")
    assert info.value.line == 2
    recs = read("plain", f"{PDQ}\n", signal_type="pdq")
    assert recs == [EntryRecord("pdq", PDQ)]


def test_plain_reports_bad_lines_with_numbers() -> None:
    recs = read("plain", f"{MD5}\nnot-a-hash\n{MD5[:-1]}g\n", signal_type=None)
    bad = [r for r in recs if isinstance(r, InvalidRecord)]
    assert [(b.position, b.position_kind) for b in bad] == [(2, "line"), (3, "line")]
    recs = read("plain", "abcd\n", signal_type="md5")
    assert isinstance(recs[0], InvalidRecord) and "md5" in recs[0].reason


def test_plain_export_refuses_ambiguous_mixes() -> None:
    assert (
        write("plain", [EntryRecord("md5", MD5), EntryRecord("sha1", SHA1)]) == f"{MD5}\n{SHA1}\n"
    )
    with pytest.raises(ExportError, match="cannot mix"):
        write("plain", [EntryRecord("md5", MD5), EntryRecord("pdq", PDQ)])


# threatexchange local_file ---------------------------------------------------------------------


def test_te_lines_and_aliases() -> None:
    recs = read("te", f"pdq {PDQ}\nvideo_md5 {MD5}\n\nsha1 {SHA1.upper()}\n")
    assert recs == [EntryRecord("pdq", PDQ), EntryRecord("md5", MD5), EntryRecord("sha1", SHA1)]
    assert write("te", recs) == f"pdq {PDQ}\nmd5 {MD5}\nsha1 {SHA1}\n"


def test_te_malformed_lines() -> None:
    recs = read("te", f"pdq {PDQ}\n{MD5}\nurl http://example.invalid/\npdq {PDQ} extra\npdq 1234\n")
    bad = {r.position: r.reason for r in recs if isinstance(r, InvalidRecord)}
    assert set(bad) == {2, 3, 4, 5}
    assert "unknown signal type" in bad[3]
    assert "extra" in bad[4]
    # a bare hash takes the default type, as in threatexchange's FileCollaborationConfig
    assert read("te", f"{PDQ}\n", signal_type="pdq") == [EntryRecord("pdq", PDQ)]


# CSV ------------------------------------------------------------------------------------------


def test_csv_round_trip_keeps_everything() -> None:
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    records = [
        EntryRecord(
            "pdq", PDQ, "list-a", "Org, Inc.", "42", "uk", "A", {"note": "x\ny", "n": 3}, when
        ),
        EntryRecord("md5", MD5),
    ]
    text = write("csv", records)
    assert read("csv", text) == records


def test_csv_header_mapping_and_extra_columns() -> None:
    text = f"Hash,Kind,Cat,Comment\n{MD5},md5,2,hello\n"
    recs = read(
        "csv",
        text,
        column_map=parse_column_map("value=Hash,signal_type=Kind,classification_label=Cat"),
    )
    assert recs == [
        EntryRecord("md5", MD5, classification_label="2", metadata={"Comment": "hello"})
    ]


def test_csv_one_column_per_signal_type() -> None:
    recs = read("csv", f"md5,sha1,category\n{MD5},{SHA1},1\n,{fake_hash('sha1', 2)},2\n")
    assert [
        (r.signal_type, r.classification_label) for r in recs if isinstance(r, EntryRecord)
    ] == [
        ("md5", "1"),
        ("sha1", "1"),
        ("sha1", "2"),
    ]


def test_csv_errors_name_lines() -> None:
    with pytest.raises(InputFormatError, match="no hash column"):
        read("csv", "a,b\n1,2\n")
    with pytest.raises(InputFormatError, match="PDQ or a SHA-256") as ambiguous:
        read("csv", f"hash\n{MD5}\n{PDQ}\n")
    assert ambiguous.value.line == 3
    with pytest.raises(InputFormatError, match="not in the header"):
        read("csv", f"hash\n{MD5}\n", column_map={"value": "Nope"})
    with pytest.raises(InputFormatError, match="unknown field"):
        parse_column_map("colour=Hash")
    text = (
        "signal_type,value,metadata,imported_at\n"
        f"md5,{MD5},,\n"
        f"md5,{MD5},{{bad json,\n"
        f"md5,{MD5},,yesterday\n"
        f"md5,{MD5}\n"
        f"sha1,{MD5},,\n"
    )
    bad = {r.position: r.reason for r in read("csv", text) if isinstance(r, InvalidRecord)}
    assert set(bad) == {3, 4, 5, 6}
    assert (
        "metadata" in bad[3]
        and "imported_at" in bad[4]
        and "columns" in bad[5]
        and "sha1" in bad[6]
    )
    long_label = read("csv", f"signal_type,value,label\nmd5,{MD5},{'x' * 65}\n")
    assert isinstance(long_label[0], InvalidRecord) and "longer than 64" in long_label[0].reason


# VICS -----------------------------------------------------------------------------------------


def vics_doc(profile: str = "UK", container: str = "Media") -> dict[str, object]:
    media = [
        {
            "MediaID": 7,
            "Category": 1,
            "MD5": MD5.upper(),
            "SHA1": SHA1.upper(),
            "MediaSize": 2835,
            "IsPrecategorized": "true",
            "Tags": "synthetic",
        },
        {"MediaID": "m-8", "Category": "3", "MD5": fake_hash("md5", 8).upper()},
        {"SHA1": fake_hash("sha1", 9).upper()},
    ]
    ctx = f"http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{profile}/$metadata#{container}"
    if container == "Cases":
        return {
            "@odata.context": ctx,
            "value": [{"CaseID": "c-1", "SourceApplicationName": "test", "Media": media}],
        }
    return {"@odata.context": ctx, "value": media}


def test_vics_reads_profile_and_both_hashes() -> None:
    recs = read("vics", json.dumps(vics_doc("UK")))
    assert all(isinstance(r, EntryRecord) for r in recs)
    got = [
        (
            r.signal_type,
            r.value,
            r.original_id,
            r.classification_scheme,
            r.classification_label,
            r.position,
        )
        for r in recs
        if isinstance(r, EntryRecord)
    ]
    assert got == [
        ("md5", MD5, "7", "vics-UK", "1", 1),
        ("sha1", SHA1, "7", "vics-UK", "1", 1),
        ("md5", fake_hash("md5", 8), "m-8", "vics-UK", "3", 2),
        ("sha1", fake_hash("sha1", 9), None, None, None, 3),
    ]


@pytest.mark.parametrize("container", ["Media", "Cases"])
def test_vics_round_trip_is_lossless(container: str) -> None:
    doc = vics_doc("US", container)
    recs = [r for r in read("vics", json.dumps(doc)) if isinstance(r, EntryRecord)]
    again = json.loads(write("vics", recs, vics_container=container.lower()))
    assert again == doc


def test_vics_refuses_mixed_profiles_and_reports_records() -> None:
    us = [r for r in read("vics", json.dumps(vics_doc("US"))) if isinstance(r, EntryRecord)]
    uk = [r for r in read("vics", json.dumps(vics_doc("UK"))) if isinstance(r, EntryRecord)]
    with pytest.raises(ExportError, match="profiles"):
        write("vics", us + uk)
    with pytest.raises(ExportError, match="UK"):
        write("vics", uk, vics_profile="US")
    doc = vics_doc()
    doc["value"] = [
        {"MD5": MD5},
        {"Category": 1},
        {"MD5": "xyz"},
        {"MD5": MD5, "Category": "one"},
        5,
    ]  # type: ignore[index]
    bad = {r.position: r for r in read("vics", json.dumps(doc)) if isinstance(r, InvalidRecord)}
    assert set(bad) == {2, 3, 4, 5}
    assert all(b.position_kind == "record" for b in bad.values())
    assert "neither MD5 nor SHA1" in bad[2].reason and "Category" in bad[4].reason


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "JSON object"),
        ('{"value": []}', "@odata.context"),
        (
            '{"odata.metadata": "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#Media",'
            ' "value": []}',
            "1.x",
        ),
        (
            '{"@odata.context": "http://x/DataModels/3.0.xml/US/$metadata#Media", "value": []}',
            "3.0",
        ),
        (
            '{"@odata.context": "http://x/DataModels/2.0.xml/US/$metadata#Media", "value": {}}',
            "list",
        ),
    ],
)
def test_vics_whole_file_errors(text: str, message: str) -> None:
    with pytest.raises(InputFormatError, match=message):
        read("vics", text)


def test_vics_export_leaves_out_types_it_cannot_carry() -> None:
    buf = io.StringIO()
    result = get_format("vics").write(
        [EntryRecord("pdq", PDQ), EntryRecord("md5", MD5)], buf, WriteOptions()
    )
    assert (result.written, result.skipped) == (1, 1)
    assert json.loads(buf.getvalue())["value"] == [{"MD5": MD5.upper()}]


def test_guess_format(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "a.csv": "x",
        "a.json": "{}",
        "a.te": "",
        "b.txt": f"pdq {PDQ}\n",
        "c.txt": f"# c\n{MD5}\n",
    }
    for name, body in cases.items():
        (tmp_path / name).write_text(body)
    names = {n: guess_format(tmp_path / n).name for n in cases}
    assert names == {
        "a.csv": "csv",
        "a.json": "vics",
        "a.te": "te",
        "b.txt": "te",
        "c.txt": "plain",
    }


_text = (
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
# Scheme names are labels from a narrow alphabet (childguard.banks.schemes refuses the rest).
_scheme = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._:+()/-]{0,40}", fullmatch=True).filter(
    lambda s: ".." not in s and s == s.strip()
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.builds(
            EntryRecord,
            signal_type=st.sampled_from(["md5", "sha1", "pdq", "sha256"]),
            value=st.integers(0, 2**128),
            source=st.none() | _text,
            organisation=st.none() | _text,
            original_id=st.none() | _text,
            classification_scheme=st.none() | _scheme,
            classification_label=st.none() | _text,
            metadata=st.none()
            | st.dictionaries(st.text(max_size=8), _json, min_size=1, max_size=4),
            imported_at=st.none()
            | st.datetimes(
                timezones=st.just(UTC),
                min_value=datetime(1990, 1, 1),
                max_value=datetime(2100, 1, 1),
            ),
        ).map(lambda r: replace(r, value=fake_hash(r.signal_type, int(r.value)))),
        max_size=8,
    )
)
def test_csv_round_trip_property(rows: list[EntryRecord]) -> None:
    assert read("csv", write("csv", rows)) == rows
