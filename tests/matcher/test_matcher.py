"""The matcher against a real store (SQLite and PostgreSQL): thresholds per bank, allow banks,
quality floor, dihedral and robust views, exact signals, and the derived index kept in sync."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from childguard.banks import EntryRecord, create_bank, delete_entries, import_records, update_bank
from childguard.matcher import Matcher, index_path
from childguard.pipeline import hash_bytes, hash_file
from childguard.signals.pdq import PdqSignal
from childguard.store.db import Store

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq" / "images"
BRIDGE = CONF / "dih_bridge-1-original.jpg"
BRIDGE_ROT = CONF / "dih_bridge-2-rotate-90.jpg"


def flip_bits(value: str, n: int, seed: int = 0) -> str:
    """`value` with exactly n distinct bits flipped."""
    rng = random.Random(seed)
    x = int(value, 16)
    for bit in rng.sample(range(256), n):
        x ^= 1 << bit
    return f"{x:064x}"


def pdq_entry(value: str, **kw: object) -> EntryRecord:
    return EntryRecord(signal_type="pdq", value=value, **kw)  # type: ignore[arg-type]


@pytest.fixture
def bridge_pdq() -> str:
    record = hash_file(BRIDGE)
    assert record.value("pdq") is not None
    return record.value("pdq")


def test_per_bank_thresholds_and_provenance(store: Store, tmp_path: Path, bridge_pdq: str) -> None:
    create_bank(store, "strict", "known-abuse", pdq_threshold=20, actor="t")
    create_bank(store, "loose", "known-abuse", pdq_threshold=52, actor="t")
    far = flip_bits(bridge_pdq, 40, seed=1)
    near = flip_bits(bridge_pdq, 10, seed=2)
    import_records(
        store,
        "strict",
        [pdq_entry(far, classification_scheme="uk", classification_label="A", original_id="s-1")],
        actor="t",
        source="list-x",
    )
    import_records(store, "loose", [pdq_entry(far), pdq_entry(near)], actor="t", organisation="org")

    matcher = Matcher(store, index_base=tmp_path)
    outcome = matcher.match(hash_file(BRIDGE))
    got = {(m.bank_name, m.value): m for m in outcome.matches}
    record_pdq = hash_file(BRIDGE).value("pdq")
    assert record_pdq is not None
    d_far = PdqSignal.distance(record_pdq, far)
    assert ("loose", far) in got and got[("loose", far)].distance == d_far
    assert ("loose", near) in got
    # 40 bits from the photo's hash is outside the strict bank's 20.
    assert ("strict", far) not in got
    assert got[("loose", near)].organisation == "org"
    assert all(m.signal_type == "pdq" and m.variant == "original" for m in outcome.matches)

    update_bank(store, "strict", pdq_threshold=45, actor="t")
    matcher.refresh()
    strict = [m for m in matcher.match(hash_file(BRIDGE)).matches if m.bank_name == "strict"]
    assert len(strict) == 1
    assert strict[0].classification == "uk:A"
    assert strict[0].source == "list-x" and strict[0].original_id == "s-1"


def test_exact_signals_match_bytes(store: Store, tmp_path: Path) -> None:
    data = BRIDGE.read_bytes()
    record = hash_bytes(data)
    create_bank(store, "exact", "known-abuse", actor="t")
    import_records(
        store, "exact", [EntryRecord(signal_type="md5", value=record.value("md5") or "")], actor="t"
    )
    outcome = Matcher(store, index_base=tmp_path).match(record)
    got = [(m.signal_type, m.distance, m.variant) for m in outcome.matches]
    assert got == [("md5", 0, "bytes")]
    # One changed byte at the end: md5 no longer matches.
    other = hash_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert not Matcher(store, index_base=tmp_path).match(other).matches


def test_allow_bank_suppresses(store: Store, tmp_path: Path, bridge_pdq: str) -> None:
    create_bank(store, "abuse", "known-abuse", actor="t")
    create_bank(store, "fp", "allow", pdq_threshold=8, actor="t")
    import_records(store, "abuse", [pdq_entry(flip_bits(bridge_pdq, 12))], actor="t")
    matcher = Matcher(store, index_base=tmp_path)
    assert matcher.match(hash_file(BRIDGE)).matched

    import_records(store, "fp", [pdq_entry(bridge_pdq)], actor="t")
    matcher.refresh()
    outcome = matcher.match(hash_file(BRIDGE))
    assert not outcome.matches
    assert [m.bank_name for m in outcome.suppressed] == ["abuse"]
    assert [m.bank_name for m in outcome.allowed_by] == ["fp"]


def test_disabled_bank_and_low_quality(store: Store, tmp_path: Path) -> None:
    flat = np.full((200, 200, 3), 128, np.uint8)
    flat[:, :3] = 129  # almost uniform: PDQ quality is very low
    buf = tmp_path / "flat.png"
    Image.fromarray(flat).save(buf)
    record = hash_file(buf)
    assert record.quality("pdq") is not None and record.quality("pdq") < 50
    create_bank(store, "b", "known-abuse", actor="t")
    import_records(store, "b", [pdq_entry(record.value("pdq") or "")], actor="t")
    matcher = Matcher(store, index_base=tmp_path)
    outcome = matcher.match(record)
    assert not outcome.matches and "quality" in (outcome.skipped or "")
    lenient = Matcher(store, index_base=tmp_path, min_quality=0)
    assert lenient.match(record).matched
    update_bank(store, "b", enabled=False, actor="t")
    lenient.refresh()
    assert not lenient.match(record).matched


def test_dihedral_matches_rotated_copy(store: Store, tmp_path: Path, bridge_pdq: str) -> None:
    create_bank(store, "b", "known-abuse", actor="t")
    import_records(store, "b", [pdq_entry(bridge_pdq)], actor="t")
    rotated = hash_file(BRIDGE_ROT, dihedral=True)
    # Known-abuse banks match rotated and flipped copies by default...
    outcome = Matcher(store, index_base=tmp_path).match(rotated)
    assert outcome.matched and outcome.matches[0].variant not in ("original", "bytes")
    assert Matcher(store, index_base=tmp_path, dihedral=True).match(rotated).matched
    # ...and not when dihedral views are turned off.
    assert not Matcher(store, index_base=tmp_path, dihedral=False).match(rotated).matched


def test_dihedral_views_do_not_match_protected_banks_by_default(
    store: Store, tmp_path: Path, bridge_pdq: str
) -> None:
    create_bank(store, "p", "protected", actor="t")
    import_records(store, "p", [pdq_entry(bridge_pdq)], actor="t")
    rotated = hash_file(BRIDGE_ROT, dihedral=True)
    assert not Matcher(store, index_base=tmp_path).match(rotated).matched
    assert Matcher(store, index_base=tmp_path, dihedral=True).match(rotated).matched


def test_robust_views_find_bordered_copy(store: Store, tmp_path: Path, bridge_pdq: str) -> None:
    img = Image.open(BRIDGE).convert("RGB")
    w, h = img.size
    framed = Image.new("RGB", (int(w * 1.4), int(h * 1.4)), (20, 20, 20))
    framed.paste(img, (int(w * 0.2), int(h * 0.2)))
    path = tmp_path / "framed.jpg"
    framed.save(path, quality=90)
    create_bank(store, "b", "known-abuse", actor="t")
    import_records(store, "b", [pdq_entry(bridge_pdq)], actor="t")
    matcher = Matcher(store, index_base=tmp_path)
    plain = hash_file(path)
    assert (
        plain.value("pdq") is not None and PdqSignal.distance(plain.value("pdq"), bridge_pdq) > 31
    )
    assert not matcher.match(plain).matched
    outcome = matcher.match(hash_file(path, robust=True))
    assert outcome.matched and outcome.matches[0].variant != "original"


def test_index_is_saved_and_synced_incrementally(store: Store, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    values = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(300)]
    create_bank(store, "b", "known-abuse", actor="t")
    import_records(store, "b", [pdq_entry(v) for v in values[:200]], actor="t")
    first = Matcher(store, index_base=tmp_path)
    assert first.last_sync["pdq"].rebuilt and first.last_sync["pdq"].size == 200
    assert (index_path(store, tmp_path) / "manifest.json").exists()

    import_records(store, "b", [pdq_entry(v) for v in values[200:]], actor="t")
    second = Matcher(store, index_base=tmp_path)
    assert not second.last_sync["pdq"].rebuilt
    assert (second.last_sync["pdq"].added, second.last_sync["pdq"].removed) == (100, 0)
    assert second.match_hash("pdq", values[250]).matched

    removed = delete_entries(store, "b", [("pdq", values[5]), ("pdq", values[250])], actor="t")
    assert len(removed) == 2
    third = Matcher(store, index_base=tmp_path)
    sync = third.last_sync["pdq"]
    assert (sync.rebuilt, sync.removed, sync.size) == (False, 2, 298)
    assert not third.match_hash("pdq", values[250]).matched
    assert not third.match_hash("pdq", values[5]).matched
    assert third.match_hash("pdq", values[6]).matched


def test_corrupt_saved_index_is_rebuilt(store: Store, tmp_path: Path, bridge_pdq: str) -> None:
    create_bank(store, "b", "known-abuse", actor="t")
    import_records(store, "b", [pdq_entry(bridge_pdq)], actor="t")
    Matcher(store, index_base=tmp_path)
    (index_path(store, tmp_path) / "pdq" / "meta.json").write_text("{not json")
    again = Matcher(store, index_base=tmp_path)
    assert again.last_sync["pdq"].rebuilt
    assert again.match_hash("pdq", bridge_pdq).matched
