# Owns the VICS UK profile table: facts to VICS JSON 2.0 category numbers (UK profile).
"""Project VIC's VICS JSON 2.0 categories in the UK profile, whose numbers follow the UK
categories: 1 Category A, 2 Category B, 3 Category C. Stored as scheme `vics`, profile `UK`;
a bank entry takes it as `vics-UK` (`childguard.banks.formats.vics`)."""

from typing import Any

CHILD = ["infant-toddler", "prepubescent", "pubescent"]

TABLE: dict[str, Any] = {
    "scheme": "vics",
    "profile": "UK",
    "version": "2.0",
    "title": "VICS categories, UK profile",
    "rules": [
        {"age_band": CHILD, "severity": ["A"], "label": "1"},
        {"age_band": CHILD, "severity": ["B"], "label": "2"},
        {"age_band": CHILD, "severity": ["C"], "label": "3"},
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
