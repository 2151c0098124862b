# Owns the industry classification table (NCMEC and Tech Coalition): facts to A1, A2, B1, B2.
"""The Tech Coalition's industry classification, as NCMEC's CyberTipline takes it: the
letter is the age (A prepubescent, B pubescent), the number the definition met (1 "sex act",
2 "lascivious exhibition"). UK tiers A and B are sex acts; tier C maps to 2."""

from typing import Any

UNDER_PUBERTY = ["infant-toddler", "prepubescent"]

TABLE: dict[str, Any] = {
    "scheme": "ncmec",
    "profile": "industry",
    "version": "2022",
    "title": "NCMEC / Tech Coalition industry classification",
    "rules": [
        {"age_band": UNDER_PUBERTY, "severity": ["A", "B"], "label": "A1"},
        {"age_band": UNDER_PUBERTY, "severity": ["C"], "label": "A2"},
        {"age_band": ["pubescent"], "severity": ["A", "B"], "label": "B1"},
        {"age_band": ["pubescent"], "severity": ["C"], "label": "B2"},
        {
            "age_band": [*UNDER_PUBERTY, "pubescent"],
            "severity": ["posed", "none"],
            "label": None,
            "why": "meets neither definition",
        },
        {
            "age_band": ["adult", "unknown"],
            "label": None,
            "why": "the classification needs an apparent child's age",
        },
    ],
}
