# Owns the INHOPE mapping table: facts to baseline, nationally illegal or not illegal.
"""INHOPE's legal status of reported content, as ICCAM records it: `baseline` (illegal in
every member country: an apparently prepubescent child), `nationally illegal` (illegal under
the hotline's national law though not baseline) and `not illegal`."""

from typing import Any

CHILD_UNDER_PUBERTY = ["infant-toddler", "prepubescent"]
INDECENT = ["A", "B", "C"]
NOT_INDECENT = ["posed", "none"]

TABLE: dict[str, Any] = {
    "scheme": "inhope",
    "profile": "default",
    "version": "1",
    "title": "INHOPE legal status (ICCAM)",
    "rules": [
        {"age_band": CHILD_UNDER_PUBERTY, "severity": INDECENT, "label": "baseline"},
        {"age_band": ["pubescent"], "severity": INDECENT, "label": "nationally illegal"},
        {
            "age_band": ["unknown", "adult"],
            "severity": INDECENT,
            "flags": {"nationally_illegal": True},
            "label": "nationally illegal",
        },
        {
            "age_band": ["unknown"],
            "severity": INDECENT,
            "flags": {"nationally_illegal": False},
            "label": None,
            "why": "the apparent age is undetermined: a supervisor decides",
        },
        {
            "age_band": ["adult"],
            "severity": INDECENT,
            "flags": {"nationally_illegal": False},
            "label": "not illegal",
        },
        {
            "severity": NOT_INDECENT,
            "flags": {"nationally_illegal": True},
            "label": "nationally illegal",
        },
        {
            "severity": NOT_INDECENT,
            "flags": {"nationally_illegal": False},
            "label": "not illegal",
        },
    ],
}
