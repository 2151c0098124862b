# Owns the scan's report files: report.html and the VICS exports, named by the scan, never by data.
"""The scan's human and machine reports: a self-contained HTML page (hashes and provenance
only, never an image) and VICS JSON v2 exports of the matched media for forensic tools.

No output path is built from data: a VICS export is `vics-<profile>.json` only when the
profile is a plain token (`childguard.banks.schemes.file_token`), else a digest of it, and the
profile itself is written inside the file. Text that cannot be encoded is written escaped."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, select_autoescape

from childguard.banks.formats import WriteOptions, get_format
from childguard.banks.formats.vics import SCHEME_PREFIX
from childguard.banks.records import EntryRecord
from childguard.banks.schemes import file_token
from childguard.scan.files import MATCHES, iter_jsonl

if TYPE_CHECKING:
    from childguard.scan.summary import ScanSummary

_TEMPLATE = (resources.files("childguard.scan") / "report.html.j2").read_text("utf-8")


def _matches(out: Path) -> list[dict[str, Any]]:
    latest = {line.get("path"): line for line in iter_jsonl(out / MATCHES)}
    return [line for line in latest.values() if line.get("matches")]


def write_html_report(out: Path, summary: ScanSummary) -> Path:
    env = Environment(autoescape=select_autoescape(default=True))
    html = env.from_string(_TEMPLATE).render(s=summary, matches=_matches(out))
    path = out / "report.html"
    path.write_text(html, encoding="utf-8", errors="backslashreplace")
    return path


def write_vics_exports(out: Path) -> list[Path]:
    """One VICS JSON file per category profile among the matches (`vics.json` for media whose
    matches carry no VICS category; `vics-<profile>.json` otherwise), since category numbers
    differ between profiles."""
    by_profile: dict[str, list[EntryRecord]] = {}
    for media_id, line in enumerate(_matches(out), start=1):
        vics_matches = [
            m
            for m in line["matches"]
            if (m.get("classification_scheme") or "").startswith(SCHEME_PREFIX)
        ]
        best = min(vics_matches, key=lambda m: m["distance"]) if vics_matches else None
        profile = best["classification_scheme"][len(SCHEME_PREFIX) :] if best else ""
        meta = {
            "vics": {
                "media": {
                    "RelativeFilePath": line["path"],
                    "MediaSize": line.get("size"),
                }
            }
        }
        for signal in ("md5", "sha1"):
            if line.get(signal):
                by_profile.setdefault(profile, []).append(
                    EntryRecord(
                        signal_type=signal,
                        value=line[signal],
                        original_id=str(media_id),
                        classification_scheme=best["classification_scheme"] if best else None,
                        classification_label=best["classification_label"] if best else None,
                        metadata=meta,
                    )
                )
    written = []
    fmt = get_format("vics")
    for profile, records in sorted(by_profile.items()):
        path = out / (f"vics-{file_token(profile)}.json" if profile else "vics.json")
        with path.open("w", encoding="utf-8", errors="backslashreplace") as fh:
            fmt.write(records, fh, WriteOptions(vics_profile=profile or "Default"))
        written.append(path)
    if not written:  # an empty, valid export says "nothing matched" to the tools that read it
        path = out / "vics.json"
        with path.open("w", encoding="utf-8") as fh:
            fmt.write([], fh, WriteOptions(vics_profile="Default"))
        written.append(path)
    return written


def load_summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data
