"""A scan of hostile input: a classification scheme that spells a path, and a file name that is
not UTF-8, against a real store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.errors import InputFormatError
from childguard.matcher import Matcher
from childguard.pipeline import hash_bytes
from childguard.scan import ScanOptions, run_scan
from childguard.store.db import Store
from hostile.media_gen import photo

TRAVERSAL = "vics-a/../../../../x/OUTSIDE"


def test_scheme_that_spells_a_path_is_refused_at_import(store: Store) -> None:
    create_bank(store, "hostile", "known-abuse", actor="t")
    record = EntryRecord(
        "md5", hash_bytes(photo(31)).value("md5") or "", classification_scheme=TRAVERSAL
    )
    with pytest.raises(InputFormatError, match="classification scheme"):
        import_records(store, "hostile", [record], actor="t")
    assert import_records(store, "hostile", [], actor="t").added == 0


def test_scan_never_writes_outside_its_report_folder_and_shows_odd_names(
    store: Store, tmp_path: Path
) -> None:
    data = photo(32)
    create_bank(store, "hostile", "known-abuse", actor="t")
    # An entry stored before schemes were checked (or by any other road) still names no path.
    import_records(
        store,
        "hostile",
        [
            EntryRecord(
                "md5",
                hash_bytes(data).value("md5") or "",
                classification_scheme=TRAVERSAL,
                classification_label="1",
            )
        ],
        actor="t",
        prevalidated=True,
    )
    disk = tmp_path / "disk"
    disk.mkdir()
    odd = Path(os.fsdecode(bytes(disk) + b"/seized\xff.jpg"))
    odd.write_bytes(data)
    out = tmp_path / "deep" / "er" / "report"
    before = {p for p in tmp_path.rglob("*") if p.is_file()}
    summary = run_scan(
        ScanOptions(roots=[disk], report_dir=out, workers=1),
        Matcher(store, index_base=tmp_path / "idx"),
    )
    assert (summary.files, summary.matched_files) == (1, 1)
    written = {p for p in tmp_path.rglob("*") if p.is_file()} - before
    outside = [p for p in written if out not in p.parents and "idx" not in p.parts]
    assert outside == []
    vics = [p for p in out.glob("vics*.json")]
    assert len(vics) == 1 and ".." not in vics[0].name
    doc = json.loads(vics[0].read_text())
    assert TRAVERSAL[len("vics-") :] in json.dumps(doc)  # the profile is kept inside the file
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "seized\\xff.jpg" in html
