# Owns the outcome table: facts to the item's outcome, harvested included.
"""The item's outcome, which decides what happens next: `baseline` and `nationally-illegal`
go to the hotline's known-abuse bank (and, later, to police or a partner hotline);
`harvested` (a legal photo of a child collected in a sexualised context) is a separate
outcome that is never sent to police; `not-illegal` closes the item; `undetermined` waits
for a supervisor. It follows the INHOPE table, with `harvested` split out of `not illegal`."""

from typing import Any

CHILD_UNDER_PUBERTY = ["infant-toddler", "prepubescent"]
INDECENT = ["A", "B", "C"]
NOT_INDECENT = ["posed", "none"]

TABLE: dict[str, Any] = {
    "scheme": "outcome",
    "profile": "default",
    "version": "1",
    "title": "childguard outcome",
    "rules": [
        {"age_band": CHILD_UNDER_PUBERTY, "severity": INDECENT, "label": "baseline"},
        {"age_band": ["pubescent"], "severity": INDECENT, "label": "nationally-illegal"},
        {
            "age_band": ["unknown", "adult"],
            "severity": INDECENT,
            "flags": {"nationally_illegal": True},
            "label": "nationally-illegal",
        },
        {
            "age_band": ["unknown"],
            "severity": INDECENT,
            "flags": {"nationally_illegal": False},
            "label": "undetermined",
        },
        {
            "age_band": ["adult"],
            "severity": INDECENT,
            "flags": {"nationally_illegal": False},
            "label": "not-illegal",
        },
        {
            "severity": NOT_INDECENT,
            "flags": {"nationally_illegal": True},
            "label": "nationally-illegal",
        },
        {
            "severity": NOT_INDECENT,
            "flags": {"nationally_illegal": False, "harvested": True},
            "label": "harvested",
        },
        {
            "severity": NOT_INDECENT,
            "flags": {"nationally_illegal": False, "harvested": False},
            "label": "not-illegal",
        },
    ],
}
