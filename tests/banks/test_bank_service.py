"""The bank service on SQLite and PostgreSQL: banks, idempotent imports, malformed files,
--skip-invalid, streaming, look-ups, exports that round-trip, and the audit log."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from childguard import banks
from childguard.banks.entries import BATCH_SIZE
from childguard.banks.formats import WriteOptions
from childguard.banks.records import EntryRecord
from childguard.errors import InputFormatError
from childguard.store import AuditEvent, Store


def fake_hash(kind: str, i: int) -> str:
    """A deterministic hex string of the right length for `kind`; not the hash of anything."""
    digest = hashlib.sha256(f"{kind}-{i}".encode()).hexdigest()
    return {"md5": digest[:32], "sha1": (digest * 2)[:40]}.get(kind, digest)


def audit_actions(store: Store) -> list[str]:
    with store.session() as s:
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def count(store: Store, bank: str) -> int:
    return banks.bank_stats(store, bank).total


def test_bank_lifecycle_is_audited(store: Store) -> None:
    b = banks.create_bank(store, "iwf", "known-abuse", owner="IWF", actor="alice")
    assert (b.name, b.kind, b.pdq_threshold, b.enabled) == ("iwf", "known-abuse", 31, True)
    with pytest.raises(banks.BankExists):
        banks.create_bank(store, "iwf", "allow", actor="alice")
    with pytest.raises(InputFormatError, match="kind"):
        banks.create_bank(store, "x", "evil", actor="alice")
    with pytest.raises(InputFormatError, match="threshold"):
        banks.create_bank(store, "x", "allow", pdq_threshold=300, actor="alice")
    banks.create_bank(store, "fp", "allow", actor="bob")
    assert [x.name for x in banks.list_banks(store)] == ["fp", "iwf"]
    assert [x.name for x in banks.list_banks(store, kind="allow")] == ["fp"]
    changed = banks.update_bank(store, "iwf", actor="carol", pdq_threshold=20, enabled=False)
    assert (changed.pdq_threshold, changed.enabled) == (20, False)
    assert banks.list_banks(store, enabled=True)[0].name == "fp"
    assert banks.delete_bank(store, "fp", actor="dave") == 0
    with pytest.raises(banks.BankNotFound):
        banks.get_bank(store, "fp")
    with store.session() as s:
        events = list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [(e.actor, e.action) for e in events] == [
        ("alice", "bank.create"),
        ("bob", "bank.create"),
        ("carol", "bank.update"),
        ("dave", "bank.delete"),
    ]
    assert events[2].details["changes"]["pdq_threshold"] == {"old": 31, "new": 20}


def test_import_is_idempotent_and_counts(store: Store, tmp_path: Path) -> None:
    banks.create_bank(store, "b", "known-abuse", actor="t")
    lines = [fake_hash("md5", i) for i in range(1200)] + [fake_hash("sha1", i) for i in range(300)]
    path = tmp_path / "list.txt"
    path.write_text("\n".join(lines + lines[:5]) + "\n")  # 5 duplicates inside the file
    first = banks.import_file(store, "b", path, actor="t", organisation="Hotline X")
    assert (first.read, first.added, first.already_present) == (1505, 1500, 5)
    second = banks.import_file(store, "b", path, actor="t")
    assert (second.added, second.already_present) == (0, 1505)
    assert count(store, "b") == 1500
    entry = banks.find_exact(store, "md5", lines[0].upper())[0]
    assert (entry.source, entry.organisation, entry.bank_name) == ("list.txt", "Hotline X", "b")
    assert audit_actions(store).count("bank.import") == 2


def test_same_hash_may_sit_in_two_banks(store: Store) -> None:
    for name in ("a", "b"):
        banks.create_bank(store, name, "known-abuse", actor="t")
        banks.add_entries(store, name, [EntryRecord("md5", fake_hash("md5", 1))], actor="t")
    assert sorted(e.bank_name for e in banks.find_exact(store, "md5", fake_hash("md5", 1))) == [
        "a",
        "b",
    ]


@pytest.mark.parametrize(
    ("fmt", "body", "where"),
    [
        ("plain", f"{fake_hash('md5', 1)}\nnot-a-hash\n", "line 2"),
        ("te", f"md5 {fake_hash('md5', 1)}\nmd5 {fake_hash('sha1', 1)}\n", "line 2"),
        ("csv", f"signal_type,value\nmd5,{fake_hash('md5', 1)}\n\nmd5,zz\n", "line 4"),
        (
            "vics",
            json.dumps(
                {
                    "@odata.context": "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/US/$metadata#Media",
                    "value": [{"MD5": fake_hash("md5", 1), "Category": 1}, {"Category": 2}],
                }
            ),
            "record 2",
        ),
    ],
)
def test_malformed_file_imports_nothing_unless_skip_invalid(
    store: Store, tmp_path: Path, fmt: str, body: str, where: str
) -> None:
    banks.create_bank(store, "b", "known-abuse", actor="t")
    path = tmp_path / f"bad.{fmt}"
    path.write_text(body)
    with pytest.raises(InputFormatError, match=where):
        banks.import_file(store, "b", path, actor="t", fmt=fmt)
    assert count(store, "b") == 0
    assert "bank.import" not in audit_actions(store)
    result = banks.import_file(store, "b", path, actor="t", fmt=fmt, skip_invalid=True)
    assert result.added == 1
    assert [s.describe().split(":")[0] for s in result.skipped] == [where]
    assert count(store, "b") == 1


def test_failure_midway_rolls_back_earlier_batches(store: Store, tmp_path: Path) -> None:
    banks.create_bank(store, "b", "known-abuse", actor="t")
    good = [fake_hash("md5", i) for i in range(BATCH_SIZE * 2 + 10)]
    path = tmp_path / "big.txt"
    path.write_text("\n".join([*good, "oops"]) + "\n")
    with pytest.raises(InputFormatError, match=f"line {len(good) + 1}"):
        banks.import_file(store, "b", path, actor="t")
    assert count(store, "b") == 0


def test_bad_signal_type_and_missing_file(store: Store, tmp_path: Path) -> None:
    banks.create_bank(store, "b", "known-abuse", actor="t")
    (tmp_path / "x.txt").write_text(fake_hash("pdq", 1) + "\n")
    with pytest.raises(InputFormatError, match="unknown signal type"):
        banks.import_file(store, "b", tmp_path / "x.txt", actor="t", signal_type="sha3")
    with pytest.raises(InputFormatError, match="no such file"):
        banks.import_file(store, "b", tmp_path / "missing.txt", actor="t")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00garbage\x80\n")
    with pytest.raises(InputFormatError):
        banks.import_file(store, "b", tmp_path / "bin.txt", actor="t")
    with pytest.raises(banks.BankNotFound):
        banks.import_file(store, "nope", tmp_path / "x.txt", actor="t", signal_type="pdq")


def test_streaming_signals_filters(store: Store) -> None:
    banks.create_bank(store, "a", "known-abuse", actor="t")
    banks.create_bank(store, "off", "allow", enabled=False, actor="t")
    banks.add_entries(
        store,
        "a",
        [EntryRecord("pdq", fake_hash("pdq", i)) for i in range(25)]
        + [EntryRecord("md5", fake_hash("md5", i)) for i in range(5)],
        actor="t",
    )
    banks.add_entries(store, "off", [EntryRecord("pdq", fake_hash("pdq", 99))], actor="t")
    everything = list(banks.iter_signals(store))
    assert len(everything) == 31
    assert [e[0] for e in everything] == sorted(e[0] for e in everything)
    pdq_on = list(banks.iter_signals(store, signal_types=["pdq"], enabled_only=True))
    assert {v for _, _, v in pdq_on} == {fake_hash("pdq", i) for i in range(25)}
    assert [len(b) for b in banks.iter_signal_batches(store, banks=["a"], batch_size=10)] == [
        10,
        10,
        10,
    ]
    last = everything[20][0]
    assert [e[0] for e in banks.iter_signals(store, after_id=last)] == [
        e[0] for e in everything[21:]
    ]
    views = banks.get_entries(store, [everything[0][0], everything[-1][0], 10**9])
    assert set(views) == {everything[0][0], everything[-1][0]}
    assert views[everything[-1][0]].bank_name == "off"
    assert views[everything[-1][0]].bank_enabled is False


def test_delete_entries_returns_ids(store: Store) -> None:
    banks.create_bank(store, "a", "known-abuse", actor="t")
    banks.add_entries(
        store, "a", [EntryRecord("md5", fake_hash("md5", i)) for i in range(3)], actor="t"
    )
    ids = [i for i, _, _ in banks.iter_signals(store)]
    removed = banks.delete_entries(
        store, "a", [("md5", fake_hash("md5", 1)), ("md5", fake_hash("md5", 7))], actor="t"
    )
    assert removed == [ids[1]]
    assert [i for i, _, _ in banks.iter_signals(store)] == [ids[0], ids[2]]
    assert audit_actions(store)[-1] == "bank.delete_entries"


def test_delete_entries_in_batches_across_signal_types(store: Store) -> None:
    banks.create_bank(store, "a", "known-abuse", actor="t")
    records = [EntryRecord("md5", fake_hash("md5", i)) for i in range(1200)]
    records += [EntryRecord("sha1", fake_hash("sha1", i)) for i in range(5)]
    banks.add_entries(store, "a", records, actor="t")
    ids = {(t, v): i for i, t, v in banks.iter_signals(store)}
    wanted = [("md5", fake_hash("md5", i)) for i in range(0, 1200, 2)]
    wanted += [("sha1", fake_hash("sha1", 3)), ("md5", fake_hash("md5", 0))]  # a repeat
    wanted += [("sha256", fake_hash("sha256", 1))]  # never stored
    removed = banks.delete_entries(store, "a", wanted, actor="t")
    expected = {ids[pair] for pair in wanted if pair in ids}
    assert len(removed) == len(expected) == 601
    assert set(removed) == expected
    assert set(ids.values()) - expected == {i for i, _, _ in banks.iter_signals(store)}


@pytest.mark.parametrize("fmt", ["plain", "te", "csv", "vics"])
def test_export_then_import_round_trips(store: Store, tmp_path: Path, fmt: str) -> None:
    banks.create_bank(store, "src", "known-abuse", actor="t")
    banks.create_bank(store, "dst", "known-abuse", actor="t")
    md5s = [fake_hash("md5", i) for i in range(4)]
    if fmt == "vics":
        records = [
            EntryRecord(
                "md5",
                v,
                original_id=str(i),
                classification_scheme="vics-UK",
                classification_label=str(i % 3),
                metadata={"vics": {"media_id": i, "media": {"Series": "synthetic"}}},
            )
            for i, v in enumerate(md5s)
        ]
    elif fmt == "csv":
        records = [
            EntryRecord(
                "pdq", fake_hash("pdq", 1), "list", "org", "9", "uk", "B", {"k": [1, "two"]}
            ),
            *(EntryRecord("md5", v) for v in md5s),
        ]
    else:
        records = [EntryRecord("md5", v) for v in md5s] + [
            EntryRecord("sha1", fake_hash("sha1", 1))
        ]
    banks.add_entries(store, "src", records, actor="t")
    path = tmp_path / f"out.{fmt}"
    written = banks.export_bank(store, "src", path, fmt, actor="t")
    assert written.written == len(records)
    banks.import_file(store, "dst", path, actor="t", fmt=fmt, source="")

    def key(r: EntryRecord) -> tuple[object, ...]:
        kept = (r.signal_type, r.value)
        if fmt in ("csv", "vics"):
            kept += (
                r.original_id,
                r.classification_scheme,
                r.classification_label,
                json.dumps(r.metadata, sort_keys=True),
            )
        if fmt == "csv":
            kept += (r.source, r.organisation, r.imported_at)
        return kept

    before = sorted(map(key, banks.iter_entry_records(store, "src")))
    after = sorted(map(key, banks.iter_entry_records(store, "dst")))
    assert before == after
    assert "bank.export" in audit_actions(store)


def test_failed_export_leaves_no_file(store: Store, tmp_path: Path) -> None:
    banks.create_bank(store, "a", "known-abuse", actor="t")
    banks.add_entries(
        store,
        "a",
        [EntryRecord("md5", fake_hash("md5", 1)), EntryRecord("pdq", fake_hash("pdq", 1))],
        actor="t",
    )
    from childguard.banks.formats import ExportError

    out = tmp_path / "exports"
    out.mkdir()
    with pytest.raises(ExportError):
        banks.export_bank(store, "a", out / "x.txt", "plain", actor="t")
    assert list(out.iterdir()) == []
    buf = io.StringIO()
    banks.export_bank(store, "a", buf, "plain", actor="t", signal_types=["pdq"])
    assert buf.getvalue() == fake_hash("pdq", 1) + "\n"
    buf = io.StringIO()
    banks.export_bank(store, "a", buf, "vics", actor="t", options=WriteOptions(vics_profile="US"))
    assert "2.0.xml/US/" in buf.getvalue()


def test_stats(store: Store) -> None:
    banks.create_bank(store, "a", "protected", actor="t")
    banks.add_entries(
        store,
        "a",
        [
            EntryRecord(
                "md5",
                fake_hash("md5", 1),
                classification_scheme="vics-US",
                classification_label="1",
            ),
            EntryRecord(
                "md5",
                fake_hash("md5", 2),
                classification_scheme="vics-US",
                classification_label="1",
            ),
            EntryRecord("pdq", fake_hash("pdq", 1)),
        ],
        actor="t",
        source="list-1",
    )
    st = banks.bank_stats(store, "a")
    assert st.total == 3
    assert st.by_signal_type == {"md5": 2, "pdq": 1}
    assert st.by_classification == {"vics-US:1": 2, "unclassified": 1}
    assert st.by_source == {"list-1": 3}
    assert st.first_imported is not None and st.first_imported.tzinfo is not None
