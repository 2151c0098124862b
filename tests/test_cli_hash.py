"""`childguard hash`: output formats, --resume, exit codes, progress only on a terminal."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childguard.cli import EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app
from childguard.signals.content import output_fields
from test_media import encode, scene

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i in range(3):
        (root / f"img{i}.png").write_bytes(encode(scene(seed=i), "PNG"))
    (root / "sub" / "photo.jpg").write_bytes(encode(scene(seed=9), "JPEG", quality=90))
    return root


def records(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_jsonl_to_stdout_and_exit_zero(folder: Path) -> None:
    result = runner.invoke(app, ["hash", str(folder)])
    assert result.exit_code == EXIT_OK, result.output
    rows = records(result.stdout)
    assert len(rows) == 4
    assert all(list(r) == list(output_fields()) for r in rows)
    assert all(r["error"] is None and len(str(r["pdq"])) == 64 for r in rows)


def test_a_bad_file_gives_a_record_and_exit_one(folder: Path) -> None:
    (folder / "broken.jpg").write_bytes(encode(scene(), "JPEG")[:300])
    (folder / "empty.gif").write_bytes(b"")
    result = runner.invoke(app, ["hash", str(folder)])
    assert result.exit_code == EXIT_PARTIAL
    rows = {Path(str(r["path"])).name: r for r in records(result.stdout)}
    assert len(rows) == 6
    assert str(rows["broken.jpg"]["error"]).startswith(("truncated", "corrupt"))
    assert str(rows["empty.gif"]["error"]).startswith("empty")
    assert rows["img0.png"]["error"] is None


def test_csv_output_with_dihedral(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "hashes.csv"
    result = runner.invoke(app, ["hash", str(folder), "--out", str(out), "--dihedral"])
    assert result.exit_code == EXIT_OK
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    assert list(rows[0]) == [*output_fields(), "pdq_dihedral"]
    variants = rows[0]["pdq_dihedral"].split()
    assert len(variants) == 8 and variants[0] == rows[0]["pdq"]


def test_resume_skips_done_paths_and_repairs_a_cut_line(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "hashes.jsonl"
    first = runner.invoke(app, ["hash", str(folder / "img0.png"), "--out", str(out)])
    assert first.exit_code == EXIT_OK
    with out.open("a") as fh:
        fh.write('{"path": "' + str(folder / "img1.png") + '", "size": 12')  # interrupted write
    result = runner.invoke(app, ["hash", str(folder), "--out", str(out), "--resume"])
    assert result.exit_code == EXIT_OK, result.output
    rows = records(out.read_text())
    paths = [str(r["path"]) for r in rows]
    assert len(paths) == len(set(paths)) == 4
    assert "1 already done" in result.stderr


def test_resume_refuses_a_file_that_is_not_ours(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "other.jsonl"
    out.write_text("this is someone's notes\n")
    result = runner.invoke(app, ["hash", str(folder), "--out", str(out), "--resume"])
    assert result.exit_code == EXIT_USAGE
    assert out.read_text() == "this is someone's notes\n"


def test_usage_errors_exit_two(folder: Path) -> None:
    assert runner.invoke(app, ["hash"]).exit_code == EXIT_USAGE
    assert runner.invoke(app, ["hash", str(folder), "--resume"]).exit_code == EXIT_USAGE
    assert runner.invoke(app, ["hash", str(folder), "--format", "xml"]).exit_code == EXIT_USAGE


def test_piped_output_has_no_progress_bar(folder: Path) -> None:
    cli = Path(sys.executable).with_name("childguard")
    done = subprocess.run(
        [str(cli), "hash", str(folder), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == EXIT_OK, done.stderr
    assert len(records(done.stdout)) == 4
    assert "\x1b[" not in done.stderr and "hashing" not in done.stderr
    assert done.stderr.strip().endswith("hashed 4 files, 0 failed")


def test_forced_progress_bar_goes_to_stderr(folder: Path) -> None:
    result = runner.invoke(app, ["hash", str(folder), "--progress"])
    assert result.exit_code == EXIT_OK
    assert len(records(result.stdout)) == 4
