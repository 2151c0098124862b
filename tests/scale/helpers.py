"""The inputs and the report comparison shared by the cluster scan tests: a folder like a seized
disk (photos, a zip, junk, a truncated JPEG), a list file with a URL served on 127.0.0.1,
banks that match some of it, and a scan's report files read back for comparison."""

from __future__ import annotations

import re
import shutil
import zipfile
from http.server import BaseHTTPRequestHandler
from itertools import islice
from pathlib import Path
from typing import Any

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.pipeline import hash_bytes, hash_file
from childguard.store.db import Store
from sample_media import jpeg_bytes

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq" / "images"
URL_PHOTO = jpeg_bytes(901)
SYNTHETIC = 12
# The bank holds the first one's PDQ: the second matches as a rotation, the third as a near copy.
PHOTOS = (
    "dih_bridge-1-original.jpg",
    "dih_bridge-2-rotate-90.jpg",
    "bridge-mods_blur-a-little.jpg",
    "misc-images_small.jpg",
    "misc-images_wee.jpg",
)


class Photo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/photo.jpg":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(URL_PHOTO)))
        self.end_headers()
        self.wfile.write(URL_PHOTO)

    def log_message(self, *args: Any) -> None:
        return


def make_evidence(base: Path, site: str) -> dict[str, Path]:
    """`root`: the disk; `list`: a list file naming the URL, a missing file and a folder."""
    root = base / "disk"
    (root / "photos").mkdir(parents=True)
    for name in PHOTOS:
        shutil.copy(CONF / name, root / "photos" / name)
    (root / "synthetic").mkdir()
    for seed in range(SYNTHETIC):
        (root / "synthetic" / f"s{seed:03d}.jpg").write_bytes(jpeg_bytes(seed))
    with zipfile.ZipFile(root / "archive.zip", "w") as zf:
        zf.write(CONF / "labelme-subset_q0746.jpg", "inner/q0746.jpg")
        zf.writestr("inner/s500.jpg", jpeg_bytes(500))
        zf.writestr("inner/readme.txt", "not an image")
    (root / "notes.txt").write_text("hello")
    data = (CONF / "labelme-subset_q1050.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    extra = base / "extra"
    extra.mkdir()
    (extra / "listed.png").write_bytes((CONF / "misc-images_c.png").read_bytes())
    listing = base / "list.txt"
    listing.write_text(
        f"# a list of evidence\n{site}/photo.jpg\n\n{extra}\n{base / 'gone.jpg'}\n"
        f"{site}/missing.jpg\n"
    )
    return {"root": root, "list": listing}


def fill_banks(store: Store) -> None:
    """A VICS list matching a photo (PDQ), a zip member and the URL (MD5), and an allow bank
    that silences one synthetic photo's match."""
    create_bank(store, "vics-list", "known-abuse", actor="t")
    bridge = hash_file(CONF / PHOTOS[0])
    inner = hash_file(CONF / "labelme-subset_q0746.jpg")
    allowed = hash_bytes(jpeg_bytes(7))
    import_records(
        store,
        "vics-list",
        [
            EntryRecord(
                "pdq",
                bridge.value("pdq") or "",
                classification_scheme="vics-UK",
                classification_label="1",
            ),
            EntryRecord(
                "md5",
                inner.value("md5") or "",
                classification_scheme="vics-UK",
                classification_label="2",
            ),
            EntryRecord(
                "md5",
                hash_bytes(URL_PHOTO).value("md5") or "",
                classification_scheme="vics-UK",
                classification_label="3",
            ),
            EntryRecord("pdq", allowed.value("pdq") or "", classification_label="x"),
        ],
        actor="t",
        source="hotline",
    )
    create_bank(store, "false-positives", "allow", actor="t")
    import_records(
        store, "false-positives", [EntryRecord("md5", allowed.value("md5") or "")], actor="t"
    )


_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00)?")


def report_of(out: Path, *, resumed: bool = False) -> dict[str, Any]:
    """Everything a scan wrote, with its start and finish times left out (and the count of
    files skipped by --resume, for a resumed scan)."""
    import json

    summary = json.loads((out / "summary.json").read_text())
    for key in ("started_at", "finished_at") + (("skipped_resume",) if resumed else ()):
        summary.pop(key)
    latest = {}
    for line in (out / "matches.jsonl").read_text().splitlines():
        row = json.loads(line)
        latest[row["path"]] = row
    return {
        "summary": summary,
        "hashes": (out / "hashes.jsonl").read_text(),
        "matches": latest if resumed else (out / "matches.jsonl").read_text(),
        "html": _STAMP.sub("T", (out / "report.html").read_text()),
        "vics": {p.name: p.read_text() for p in sorted(out.glob("vics*.json"))},
    }


def same(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """Whether two reports are the same; if not, the first lines where they differ are in the
    assertion's message."""
    import difflib
    import json

    for key in want:
        a, b = (
            x if isinstance(x, str) else json.dumps(x, indent=1, sort_keys=True)
            for x in (got.get(key), want[key])
        )
        if a != b:
            diff = difflib.unified_diff(b.splitlines(), a.splitlines(), lineterm="", n=0)
            lines = [line[:400] for line in islice(diff, 12)]
            raise AssertionError(f"the reports differ in {key}:\n" + "\n".join(lines))
    return set(got) == set(want)
