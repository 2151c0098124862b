# Owns the NCMEC file annotation table: facts to the CyberTipline's file annotation flags.
"""NCMEC's CyberTipline file annotations, by their field names, derived only where the item
has an industry classification (a file that would be reported). Each is a flag: present or
absent. Only annotations that a neutral fact decides are derived here."""

from typing import Any

ANNOTATIONS: dict[str, Any] = {
    "scheme": "ncmec-annotation",
    "version": "2024",
    "title": "NCMEC file annotations",
    "requires": "ncmec",
    "annotations": [
        {"label": "infant", "age_band": ["infant-toddler"]},
        {"label": "generativeAi", "flags": {"generated": True}},
        {"label": "possibleSelfProduction", "flags": {"self_produced": True}},
        {"label": "liveStreaming", "flags": {"live_streamed": True}},
        {"label": "viral", "flags": {"viral": True}},
        {"label": "potentialMeme", "flags": {"meme": True}},
    ],
}
