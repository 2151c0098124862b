# Owns the VICS US profile table: facts to VICS JSON 2.0 category numbers (US profile).
"""Project VIC's VICS JSON 2.0 categories in the US profile: 0 non-pertinent, 1 child abuse
material, 2 child exploitive (non-CAM) / age difficult, 3 CGI / animation. (4, comparison
images, is an investigator's category and never derived.) Stored as scheme `vics`, profile
`US`; a bank entry takes it as `vics-US` (`childguard.banks.formats.vics`)."""

from typing import Any

CHILD = ["infant-toddler", "prepubescent", "pubescent"]
INDECENT = ["A", "B", "C"]
NOT_INDECENT = ["posed", "none"]

TABLE: dict[str, Any] = {
    "scheme": "vics",
    "profile": "US",
    "version": "2.0",
    "title": "VICS categories, US profile",
    "rules": [
        {"age_band": CHILD, "severity": INDECENT, "flags": {"generated": False}, "label": "1"},
        {
            "age_band": [*CHILD, "unknown"],
            "severity": INDECENT,
            "flags": {"generated": True},
            "label": "3",
        },
        {
            "age_band": ["unknown"],
            "severity": INDECENT,
            "flags": {"generated": False},
            "label": "2",
        },
        {
            "age_band": [*CHILD, "unknown"],
            "severity": NOT_INDECENT,
            "flags": {"harvested": True},
            "label": "2",
        },
        {
            "age_band": [*CHILD, "unknown"],
            "severity": NOT_INDECENT,
            "flags": {"harvested": False},
            "label": "0",
        },
        {"age_band": ["adult"], "label": "0"},
    ],
}
