"""Allow banks' scope on the real matcher and store (SQLite and PostgreSQL): an organisation's
allow bank silences only its own protected bank's matches; a service-wide one silences all."""

from __future__ import annotations

from pathlib import Path

import pytest

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.matcher import Matcher
from childguard.pipeline import hash_file
from childguard.protect.organisations import bank_name_for, create_organisation
from childguard.signals.content import ContentSignals
from childguard.store.db import Store

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq" / "images"
BRIDGE = CONF / "dih_bridge-1-original.jpg"


@pytest.fixture
def bridge() -> ContentSignals:
    return hash_file(BRIDGE)


@pytest.fixture
def banks(store: Store, bridge: ContentSignals) -> Store:
    """A known-abuse bank and two organisations' protected banks, each holding the bridge's PDQ
    and SHA-256; organisation A's allow bank (as its pages make it) holds the same."""
    pdq, sha = bridge.value("pdq"), bridge.value("sha256")
    assert pdq and sha
    entries = [EntryRecord(signal_type="pdq", value=pdq), EntryRecord("sha256", sha)]
    with store.session() as s:
        create_organisation(s, "Scouts A", actor="t")
        create_organisation(s, "Swim B", actor="t")
    create_bank(store, "abuse", "known-abuse", actor="t")
    create_bank(store, "allow:Scouts A", "allow", owner="Scouts A", pdq_threshold=16, actor="t")
    for bank in ("abuse", bank_name_for("Scouts A"), bank_name_for("Swim B"), "allow:Scouts A"):
        import_records(store, bank, entries, actor="t")
    return store


def test_org_allow_bank_silences_only_its_own_protected_bank(
    banks: Store, tmp_path: Path, bridge: ContentSignals
) -> None:
    outcome = Matcher(banks, index_base=tmp_path).match(bridge)
    kept = {m.bank_name for m in outcome.matches}
    assert kept == {"abuse", bank_name_for("Swim B")}
    assert {m.bank_name for m in outcome.suppressed} == {bank_name_for("Scouts A")}
    assert {m.bank_name for m in outcome.allowed_by} == {"allow:Scouts A"}
    # Both signal types of each bank are matched and each keeps its own side.
    assert sorted(m.signal_type for m in outcome.suppressed) == ["pdq", "sha256"]
    assert all(m.bank_kind != "allow" for m in outcome.matches)


def test_service_wide_allow_bank_silences_every_match(
    banks: Store, tmp_path: Path, bridge: ContentSignals
) -> None:
    matcher = Matcher(banks, index_base=tmp_path)
    assert matcher.match(bridge).matches
    # A bank owned by no organisation (or by a name that is not one) is service-wide.
    create_bank(banks, "fp", "allow", owner="hotline team", pdq_threshold=8, actor="t")
    import_records(banks, "fp", [EntryRecord("sha256", bridge.value("sha256") or "")], actor="t")
    matcher.refresh()
    outcome = matcher.match(bridge)
    assert outcome.matches == []
    assert {m.bank_name for m in outcome.suppressed} == {
        "abuse",
        bank_name_for("Scouts A"),
        bank_name_for("Swim B"),
    }
    assert {m.bank_name for m in outcome.allowed_by} == {"allow:Scouts A", "fp"}


def test_org_allow_scope_follows_a_new_organisation(
    store: Store, tmp_path: Path, bridge: ContentSignals
) -> None:
    """An allow bank made before its organisation is service-wide until the organisation
    exists; a refresh scopes it."""
    sha = bridge.value("sha256") or ""
    create_bank(store, "abuse", "known-abuse", actor="t")
    create_bank(store, "allow:Late", "allow", owner="Late", actor="t")
    for bank in ("abuse", "allow:Late"):
        import_records(store, bank, [EntryRecord("sha256", sha)], actor="t")
    matcher = Matcher(store, index_base=tmp_path)
    assert [m.bank_name for m in matcher.match(bridge).suppressed] == ["abuse"]
    with store.session() as s:
        create_organisation(s, "Late", actor="t")
    matcher.refresh()
    outcome = matcher.match(bridge)
    assert [m.bank_name for m in outcome.matches] == ["abuse"]
    assert outcome.suppressed == []
