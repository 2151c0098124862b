# Owns the classification schemes: record the facts once, derive every scheme's label.
"""Classification schemes as data. An analyst records `Facts`; `derive(facts)` gives the
item's outcome and a `Label(scheme, profile, version, label)` in every scheme that has one
for those facts: INHOPE, UK, the industry classification (NCMEC / Tech Coalition) with
NCMEC's file annotations, and VICS in its US and UK profiles. Each scheme's table is a module
of plain data here, checked complete and unambiguous when this package is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from childguard.hotline.schemes import (
    industry,
    inhope,
    ncmec_annotations,
    outcome,
    uk,
    vics_uk,
    vics_us,
)
from childguard.hotline.schemes.facts import (
    AGE_BANDS,
    CHILD_BANDS,
    FLAGS,
    SEVERITIES,
    Facts,
    InvalidFacts,
    every_facts,
)
from childguard.hotline.schemes.tables import AnnotationTable, Label, SchemeTable, SchemeTableError

OUTCOME_TABLE = SchemeTable.load(outcome.TABLE)
TABLES: tuple[SchemeTable, ...] = tuple(
    SchemeTable.load(t)
    for t in (inhope.TABLE, uk.TABLE, industry.TABLE, vics_us.TABLE, vics_uk.TABLE)
)
ANNOTATION_TABLES: tuple[AnnotationTable, ...] = (
    AnnotationTable.load(ncmec_annotations.ANNOTATIONS),
)
# The outcomes whose hashes go to the hotline's known-abuse bank.
ILLEGAL_OUTCOMES = ("baseline", "nationally-illegal")


@dataclass(frozen=True)
class Derivation:
    """What a set of facts gives: the item's outcome and its labels, sorted."""

    facts: Facts
    outcome: str
    labels: tuple[Label, ...]

    def label(self, scheme: str, profile: str = "default") -> str | None:
        """The label in one scheme and profile; None where the scheme gives none."""
        for found in self.labels:
            if found.scheme == scheme and found.profile == profile:
                return found.label
        return None

    def agreement_key(self) -> tuple[str, tuple[tuple[str, str, str], ...]]:
        """What two votes must share to agree: the outcome and every label."""
        return self.outcome, tuple((lb.scheme, lb.profile, lb.label) for lb in self.labels)


def derive(facts: Facts) -> Derivation:
    """The outcome and every scheme's label for `facts`."""
    labels = [label for table in TABLES if (label := table.derive(facts)) is not None]
    for flags_table in ANNOTATION_TABLES:
        labels.extend(flags_table.derive(facts, labels))
    result = OUTCOME_TABLE.derive(facts)
    if result is None:  # the outcome table gives a label for every combination
        raise SchemeTableError(f"no outcome for {facts}")
    return Derivation(facts, result.label, tuple(sorted(labels)))


def describe() -> dict[str, Any]:
    """The facts and every mapping table, as plain data (for the API and the pages)."""
    return {
        "facts": {
            "age_band": list(AGE_BANDS),
            "severity": list(SEVERITIES),
            "flags": list(FLAGS),
        },
        "outcome": OUTCOME_TABLE.to_dict(),
        "schemes": [t.to_dict() for t in TABLES],
        "annotations": [t.to_dict() for t in ANNOTATION_TABLES],
    }


def _cell(values: list[str], every: tuple[str, ...]) -> str:
    return "any" if len(values) == len(every) else ", ".join(f"`{v}`" for v in values)


def markdown() -> str:
    """Every mapping table as Markdown tables (docs/hotline.md holds this text)."""
    out: list[str] = []
    for table in (OUTCOME_TABLE, *TABLES):
        out.append(
            f"**{table.title}**: scheme `{table.scheme}`, profile `{table.profile}`, "
            f"version `{table.version}`\n"
        )
        out.append("| age band | severity | flags | label |")
        out.append("| --- | --- | --- | --- |")
        for rule in table.rules:
            raw = rule.to_dict()
            flags = ", ".join(f"`{k}`={'yes' if v else 'no'}" for k, v in raw["flags"].items())
            label = f"`{rule.label}`" if rule.label is not None else f"no label ({rule.why})"
            out.append(
                f"| {_cell(raw['age_band'], AGE_BANDS)} | {_cell(raw['severity'], SEVERITIES)} "
                f"| {flags or 'any'} | {label} |"
            )
        out.append("")
    for flags_table in ANNOTATION_TABLES:
        out.append(
            f"**{flags_table.title}**: scheme `{flags_table.scheme}` (each annotation its own "
            f"profile), version `{flags_table.version}`, only with a `{flags_table.requires}` "
            "label\n"
        )
        out.append("| annotation | age band | flags |")
        out.append("| --- | --- | --- |")
        for name, rule in flags_table.annotations:
            raw = rule.to_dict()
            flags = ", ".join(f"`{k}`={'yes' if v else 'no'}" for k, v in raw["flags"].items())
            out.append(f"| `{name}` | {_cell(raw['age_band'], AGE_BANDS)} | {flags or 'any'} |")
        out.append("")
    return "\n".join(out)


__all__ = [
    "AGE_BANDS",
    "ANNOTATION_TABLES",
    "CHILD_BANDS",
    "FLAGS",
    "ILLEGAL_OUTCOMES",
    "OUTCOME_TABLE",
    "SEVERITIES",
    "TABLES",
    "Derivation",
    "Facts",
    "InvalidFacts",
    "Label",
    "SchemeTable",
    "SchemeTableError",
    "derive",
    "describe",
    "every_facts",
    "markdown",
]
