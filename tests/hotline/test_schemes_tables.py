"""The mapping tables, scheme by scheme: every valid combination of facts meets exactly one
rule of each table, each scheme gives the labels its definition says, a malformed table is
refused, and docs/hotline.md shows the tables as they are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from childguard.hotline.schemes import (
    ANNOTATION_TABLES,
    OUTCOME_TABLE,
    TABLES,
    Facts,
    InvalidFacts,
    SchemeTable,
    SchemeTableError,
    derive,
    describe,
    every_facts,
    markdown,
)
from childguard.hotline.schemes import inhope as inhope_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "hotline.md"
ALL = list(every_facts())


def _label(facts: Facts, scheme: str, profile: str = "default") -> str | None:
    return derive(facts).label(scheme, profile)


def test_every_combination_meets_exactly_one_rule_of_every_table() -> None:
    assert len(ALL) > 2000
    for table in (OUTCOME_TABLE, *TABLES):
        for facts in ALL:
            assert sum(rule.covers(facts) for rule in table.rules) == 1, (table.scheme, facts)
    for facts in ALL:
        labels = derive(facts).labels
        keys = [(lb.scheme, lb.profile) for lb in labels]
        assert len(keys) == len(set(keys)), facts


@pytest.mark.parametrize(
    ("age", "severity", "flags", "expected"),
    [
        ("prepubescent", "A", {}, "baseline"),
        ("infant-toddler", "C", {}, "baseline"),
        ("pubescent", "B", {}, "nationally illegal"),
        ("unknown", "A", {}, None),
        ("unknown", "A", {"nationally_illegal": True}, "nationally illegal"),
        ("adult", "A", {}, "not illegal"),
        ("prepubescent", "posed", {"nationally_illegal": True}, "nationally illegal"),
        ("prepubescent", "posed", {"harvested": True}, "not illegal"),
        ("adult", "none", {}, "not illegal"),
    ],
)
def test_inhope(age: str, severity: str, flags: dict[str, bool], expected: str | None) -> None:
    assert _label(Facts(age, severity, **flags), "inhope") == expected


@pytest.mark.parametrize(
    ("age", "severity", "expected"),
    [
        ("infant-toddler", "A", "A"),
        ("prepubescent", "B", "B"),
        ("pubescent", "C", "C"),
        ("pubescent", "posed", None),
        ("adult", "A", None),
        ("unknown", "B", None),
    ],
)
def test_uk(age: str, severity: str, expected: str | None) -> None:
    assert _label(Facts(age, severity), "uk") == expected


@pytest.mark.parametrize(
    ("age", "severity", "expected"),
    [
        ("infant-toddler", "A", "A1"),
        ("prepubescent", "B", "A1"),
        ("prepubescent", "C", "A2"),
        ("pubescent", "A", "B1"),
        ("pubescent", "C", "B2"),
        ("pubescent", "none", None),
        ("adult", "A", None),
        ("unknown", "C", None),
    ],
)
def test_industry_classification(age: str, severity: str, expected: str | None) -> None:
    assert _label(Facts(age, severity), "ncmec", "industry") == expected


def test_ncmec_annotations_come_only_with_an_industry_classification() -> None:
    flagged = Facts("infant-toddler", "B", generated=True, viral=True)
    found = {lb.profile for lb in derive(flagged).labels if lb.scheme == "ncmec-annotation"}
    assert found == {"infant", "generativeAi", "viral"}
    both = Facts("pubescent", "C", self_produced=True, live_streamed=True, meme=True)
    found = {lb.label for lb in derive(both).labels if lb.scheme == "ncmec-annotation"}
    assert found == {"possibleSelfProduction", "liveStreaming", "potentialMeme"}
    adult = Facts("adult", "A", generated=True, viral=True)
    assert not [lb for lb in derive(adult).labels if lb.scheme == "ncmec-annotation"]


@pytest.mark.parametrize(
    ("facts", "us", "uk"),
    [
        (Facts("prepubescent", "A"), "1", "1"),
        (Facts("pubescent", "B"), "1", "2"),
        (Facts("infant-toddler", "C"), "1", "3"),
        (Facts("prepubescent", "A", generated=True), "3", "1"),
        (Facts("unknown", "B"), "2", None),
        (Facts("prepubescent", "posed", harvested=True), "2", None),
        (Facts("prepubescent", "none"), "0", None),
        (Facts("adult", "A"), "0", None),
    ],
)
def test_vics_profiles(facts: Facts, us: str | None, uk: str | None) -> None:
    assert _label(facts, "vics", "US") == us
    assert _label(facts, "vics", "UK") == uk
    versions = {lb.version for lb in derive(facts).labels if lb.scheme == "vics"}
    assert versions <= {"2.0"}


@pytest.mark.parametrize(
    ("facts", "outcome"),
    [
        (Facts("prepubescent", "B"), "baseline"),
        (Facts("pubescent", "A"), "nationally-illegal"),
        (Facts("adult", "none", nationally_illegal=True), "nationally-illegal"),
        (Facts("prepubescent", "posed", harvested=True), "harvested"),
        (Facts("unknown", "none", harvested=True), "harvested"),
        (Facts("prepubescent", "posed"), "not-illegal"),
        (Facts("unknown", "A"), "undetermined"),
    ],
)
def test_outcomes_with_harvested_apart(facts: Facts, outcome: str) -> None:
    assert derive(facts).outcome == outcome


def test_a_harvested_photo_gets_no_police_label() -> None:
    labels = derive(Facts("pubescent", "posed", harvested=True)).labels
    assert {(lb.scheme, lb.label) for lb in labels} == {("inhope", "not illegal"), ("vics", "2")}


@pytest.mark.parametrize(
    "raw",
    [
        {"age_band": "teen", "severity": "A"},
        {"age_band": "adult", "severity": "X"},
        {"age_band": "adult", "severity": "none", "harvested": True},
        {"age_band": "prepubescent", "severity": "A", "harvested": True},
        {"age_band": "adult", "severity": "none", "colour": True},
        {"severity": "A"},
        {"age_band": "adult", "severity": "none", "viral": "yes"},
    ],
)
def test_invalid_facts_are_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidFacts):
        Facts.from_dict(raw)


def _table(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"scheme": "t", "profile": "default", "version": "1", "rules": rules}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"severity": ["A", "B", "C"], "label": "x"}], "no rule"),
        ([{"label": "x"}, {"age_band": ["adult"], "label": "y"}], "rules"),
        ([{"age_band": ["teen"], "label": "x"}], "unknown age_band"),
        ([{"label": None}], "say why"),
        ([{"flags": {"colour": True}, "label": "x"}], "flags"),
    ],
)
def test_a_malformed_table_is_refused(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(SchemeTableError, match=message):
        SchemeTable.load(_table(rules))


def test_the_shipped_tables_load_and_a_changed_one_is_checked() -> None:
    broken = json.loads(json.dumps(inhope_table.TABLE))
    broken["rules"].pop(0)
    with pytest.raises(SchemeTableError, match="no rule"):
        SchemeTable.load(broken)


def test_describe_is_plain_json() -> None:
    described = json.loads(json.dumps(describe()))
    assert {s["scheme"] for s in described["schemes"]} == {"inhope", "uk", "ncmec", "vics"}
    assert {(s["scheme"], s["profile"]) for s in described["schemes"]} >= {
        ("vics", "US"),
        ("vics", "UK"),
    }
    assert described["facts"]["severity"] == ["A", "B", "C", "posed", "none"]
    assert described["annotations"][0]["requires"] == "ncmec"


def test_the_docs_show_every_table_as_it_is() -> None:
    text = DOCS.read_text()
    assert markdown() in text
    for table in (*TABLES, *ANNOTATION_TABLES):
        assert f"scheme `{table.scheme}`" in text
