# Owns loading and checking the mapping tables, and deriving labels from facts with them.
"""A mapping table is plain data: a scheme, a profile, a version and rules. A rule names the
age bands and severities it covers (all when left out) and the flags it needs set or unset,
and gives a label or none (`label: None`, with `why`). Every table is checked when it is
loaded: each valid combination of facts must meet exactly one rule. An annotation table
gives each annotation whose condition the facts meet, only where the scheme it `requires`
gave a label.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from childguard.hotline.schemes.facts import AGE_BANDS, FLAGS, SEVERITIES, Facts, InvalidFacts


class SchemeTableError(ValueError):
    """A mapping table that is malformed, incomplete or ambiguous."""


@dataclass(frozen=True, order=True)
class Label:
    """One label in one scheme: never a bare number."""

    scheme: str
    profile: str
    version: str
    label: str

    def to_dict(self) -> dict[str, str]:
        return {
            "scheme": self.scheme,
            "profile": self.profile,
            "version": self.version,
            "label": self.label,
        }


@dataclass(frozen=True)
class Rule:
    age_bands: frozenset[str]
    severities: frozenset[str]
    flags: tuple[tuple[str, bool], ...]
    label: str | None
    why: str

    def covers(self, facts: Facts) -> bool:
        return (
            facts.age_band in self.age_bands
            and facts.severity in self.severities
            and all(facts.flag(name) is wanted for name, wanted in self.flags)
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "age_band": [a for a in AGE_BANDS if a in self.age_bands],
            "severity": [s for s in SEVERITIES if s in self.severities],
            "flags": dict(self.flags),
            "label": self.label,
        }
        if self.label is None:
            out["why"] = self.why
        return out


def _values(raw: Mapping[str, Any], key: str, allowed: Sequence[str], where: str) -> frozenset[str]:
    given = raw.get(key, list(allowed))
    if not isinstance(given, list) or not given:
        raise SchemeTableError(f"{where}: {key} must be a non-empty list")
    unknown = [v for v in given if v not in allowed]
    if unknown:
        raise SchemeTableError(f"{where}: unknown {key} {unknown}")
    return frozenset(given)


def _rule(raw: Mapping[str, Any], where: str) -> Rule:
    extra = set(raw) - {"age_band", "severity", "flags", "label", "why"}
    if extra:
        raise SchemeTableError(f"{where}: unknown keys {sorted(extra)}")
    flags = raw.get("flags", {})
    if not isinstance(flags, dict) or any(
        k not in FLAGS or not isinstance(v, bool) for k, v in flags.items()
    ):
        raise SchemeTableError(f"{where}: flags must map known flags to true or false")
    label = raw.get("label", "")
    if label is not None and (not isinstance(label, str) or not label or len(label) > 64):
        raise SchemeTableError(f"{where}: label must be 1-64 characters, or None for no label")
    why = raw.get("why", "")
    if label is None and not why:
        raise SchemeTableError(f"{where}: a rule that gives no label must say why")
    return Rule(
        _values(raw, "age_band", AGE_BANDS, where),
        _values(raw, "severity", SEVERITIES, where),
        tuple(sorted(flags.items())),
        label,
        str(why),
    )


def _header(raw: Mapping[str, Any], keys: Iterable[str]) -> str:
    for key in keys:
        value = raw.get(key)
        if not isinstance(value, str) or not value or len(value) > 32:
            raise SchemeTableError(f"table {raw.get('scheme')!r}: {key} must be 1-32 characters")
    return f"{raw['scheme']}/{raw.get('profile', '')}"


def _combinations(flags: Iterable[str]) -> list[Facts]:
    """Every valid combination of age band, severity and `flags` (other flags unset)."""
    names = sorted(set(flags))
    out = []
    for age in AGE_BANDS:
        for severity in SEVERITIES:
            for values in product((False, True), repeat=len(names)):
                try:
                    out.append(Facts(age, severity, **dict(zip(names, values, strict=True))))
                except InvalidFacts:
                    continue
    return out


@dataclass(frozen=True)
class SchemeTable:
    """One scheme's mapping table, checked complete and unambiguous."""

    scheme: str
    profile: str
    version: str
    title: str
    rules: tuple[Rule, ...]

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> SchemeTable:
        name = _header(raw, ("scheme", "profile", "version"))
        rules = raw.get("rules")
        if not isinstance(rules, list) or not rules:
            raise SchemeTableError(f"table {name}: rules must be a non-empty list")
        table = cls(
            raw["scheme"],
            raw["profile"],
            raw["version"],
            str(raw.get("title", raw["scheme"])),
            tuple(_rule(r, f"table {name} rule {n}") for n, r in enumerate(rules, 1)),
        )
        # Only the flags some rule looks at can change the answer; the rest stay unset.
        looked_at = {f for rule in table.rules for f, _ in rule.flags}
        for facts in _combinations(looked_at):
            met = [n for n, rule in enumerate(table.rules, 1) if rule.covers(facts)]
            if len(met) != 1:
                what = "no rule" if not met else f"rules {met}"
                raise SchemeTableError(f"table {name}: {what} for {facts}")
        return table

    def rule_for(self, facts: Facts) -> Rule:
        return next(rule for rule in self.rules if rule.covers(facts))

    def derive(self, facts: Facts) -> Label | None:
        rule = self.rule_for(facts)
        if rule.label is None:
            return None
        return Label(self.scheme, self.profile, self.version, rule.label)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "profile": self.profile,
            "version": self.version,
            "title": self.title,
            "rules": [r.to_dict() for r in self.rules],
        }


@dataclass(frozen=True)
class AnnotationTable:
    """Flags of one scheme (each its own profile), given where `requires` gave a label."""

    scheme: str
    version: str
    title: str
    requires: str
    annotations: tuple[tuple[str, Rule], ...]

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> AnnotationTable:
        name = _header(raw, ("scheme", "version", "requires"))
        items = raw.get("annotations")
        if not isinstance(items, list) or not items:
            raise SchemeTableError(f"table {name}: annotations must be a non-empty list")
        out = []
        for n, item in enumerate(items, 1):
            where = f"table {name} annotation {n}"
            label = item.get("label") if isinstance(item, dict) else None
            if not isinstance(label, str) or not label or len(label) > 32:
                raise SchemeTableError(f"{where}: label must be 1-32 characters")
            out.append((label, _rule(item, where)))
        labels = [label for label, _ in out]
        if len(set(labels)) != len(labels):
            raise SchemeTableError(f"table {name}: an annotation is given twice")
        return cls(
            raw["scheme"], raw["version"], str(raw.get("title", "")), raw["requires"], tuple(out)
        )

    def derive(self, facts: Facts, derived: Sequence[Label]) -> list[Label]:
        if not any(label.scheme == self.requires for label in derived):
            return []
        return [
            Label(self.scheme, name, self.version, name)
            for name, rule in self.annotations
            if rule.covers(facts)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "version": self.version,
            "title": self.title,
            "requires": self.requires,
            "annotations": [{"label": name, **rule.to_dict()} for name, rule in self.annotations],
        }
