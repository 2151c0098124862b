"""`scan` and `match` end to end against a real store: zip members, bad files, per-category
counts, HTML and VICS reports, resume, exit codes and JSON output."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.cli import EXIT_FOUND, EXIT_OK, app
from childguard.matcher import Matcher
from childguard.pipeline import hash_file
from childguard.scan import ScanOptions, run_scan
from childguard.store.db import Store

CONF = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "pdq" / "images"


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    """A folder like a seized disk: photos, a zip holding one, junk and a truncated JPEG."""
    root = tmp_path / "disk"
    (root / "photos").mkdir(parents=True)
    for name in ("dih_bridge-1-original.jpg", "labelme-subset_q0122.jpg", "misc-images_c.png"):
        shutil.copy(CONF / name, root / "photos" / name)
    with zipfile.ZipFile(root / "archive.zip", "w") as zf:
        zf.write(CONF / "labelme-subset_q0746.jpg", "inner/q0746.jpg")
        zf.writestr("inner/readme.txt", "not an image")
    (root / "notes.txt").write_text("hello")
    data = (CONF / "labelme-subset_q1050.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    return root


@pytest.fixture
def banks(store: Store) -> Store:
    create_bank(store, "vics-list", "known-abuse", actor="t")
    bridge = hash_file(CONF / "dih_bridge-1-original.jpg")
    inner = hash_file(CONF / "labelme-subset_q0746.jpg")
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
        ],
        actor="t",
        source="hotline",
    )
    return store


def test_scan_reports_matches_categories_and_errors(
    banks: Store, evidence: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    summary = run_scan(
        ScanOptions(roots=[evidence], report_dir=out, workers=1),
        Matcher(banks, index_base=tmp_path / "idx"),
    )
    # 3 photos + the zip's photo + truncated.jpg; notes.txt and the zip's readme.txt are not
    # media: skipped and counted, not failed.
    assert summary.files == 5
    assert summary.skipped_not_media == 2
    assert summary.failed == 1  # truncated.jpg
    assert summary.matched_files == 2
    assert summary.by_category == {"vics-UK:1": 1, "vics-UK:2": 1}
    assert set(summary.by_error) == {"truncated"}
    assert json.loads((out / "summary.json").read_text())["skipped_not_media"] == 2
    matched = {
        json.loads(line)["path"] for line in (out / "matches.jsonl").read_text().splitlines()
    }
    assert matched == {
        str(evidence / "photos" / "dih_bridge-1-original.jpg"),
        f"{evidence / 'archive.zip'}!inner/q0746.jpg",
    }
    html = (out / "report.html").read_text()
    assert "dih_bridge-1-original.jpg" in html and "vics-UK" in html and "<img" not in html
    vics = json.loads((out / "vics-UK.json").read_text())
    assert vics["@odata.context"].endswith("/2.0.xml/UK/$metadata#Media")
    categories = sorted(int(m["Category"]) for m in vics["value"])
    assert categories == [1, 2]
    assert all(m["MD5"] and m["SHA1"] for m in vics["value"])


def test_scan_resume_skips_done_files(banks: Store, evidence: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    matcher = Matcher(banks, index_base=tmp_path / "idx")
    first = run_scan(ScanOptions(roots=[evidence / "photos"], report_dir=out, workers=1), matcher)
    assert (first.files, first.matched_files) == (3, 1)
    seen: list[str] = []
    second = run_scan(
        ScanOptions(roots=[evidence], report_dir=out, resume=True, workers=1),
        matcher,
        on_record=lambda record, _outcome: seen.append(record.path),
    )
    assert second.skipped_resume == 3
    assert not any("/photos/" in p for p in seen)
    assert len(seen) == 2
    # Totals cover both runs, and no file is counted twice.
    assert (second.files, second.matched_files, second.skipped_not_media) == (5, 2, 2)


def test_match_cli_exit_codes_and_json(
    banks: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = str(banks.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("CHILDGUARD_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    hit = runner.invoke(
        app, ["match", "--db", url, "--json", str(CONF / "dih_bridge-1-original.jpg")]
    )
    assert hit.exit_code == EXIT_FOUND, hit.output
    line = json.loads(hit.stdout)[0]  # --json: one array, an object per file
    assert line["matches"][0]["bank_name"] == "vics-list"
    assert line["matches"][0]["classification_label"] == "1"
    assert line["matches"][0]["source"] == "hotline"
    miss = runner.invoke(app, ["match", "--db", url, str(CONF / "misc-images_c.png")])
    assert miss.exit_code == EXIT_OK, miss.output
    assert "0 file(s) matched" in miss.stdout


def test_scan_cli_refuses_missing_root(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "scan",
            str(tmp_path / "nope"),
            "--report",
            str(tmp_path / "r"),
            "--db",
            str(tmp_path / "x.db"),
        ],
    )
    assert result.exit_code == 2
    assert "no such file or folder" in result.stderr
