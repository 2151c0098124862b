# Owns the UK mapping table: facts to Category A, B or C.
"""The UK's categories of indecent images of children (Sentencing Council, 2014): A, B and
C, for a child of any age band. The severity fact uses these tiers, so the map is direct."""

from typing import Any

CHILD = ["infant-toddler", "prepubescent", "pubescent"]

TABLE: dict[str, Any] = {
    "scheme": "uk",
    "profile": "default",
    "version": "2014",
    "title": "UK Category A/B/C",
    "rules": [
        {"age_band": CHILD, "severity": ["A"], "label": "A"},
        {"age_band": CHILD, "severity": ["B"], "label": "B"},
        {"age_band": CHILD, "severity": ["C"], "label": "C"},
        {
            "age_band": CHILD,
            "severity": ["posed", "none"],
            "label": None,
            "why": "not an indecent image",
        },
        {
            "age_band": ["adult", "unknown"],
            "label": None,
            "why": "the categories are for images of children",
        },
    ],
}
