"""Files in a folder that are not images or videos (a manifest.csv, a readme.txt) are skipped by
type and counted, not failed: `hash`, `match` and `scan` exit 0 on a folder of good photos with
a manifest beside them. A file that claims an image suffix and is not one still fails, and an
image without an image suffix is still hashed (its first bytes say what it is)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childguard.cli import EXIT_OK, EXIT_PARTIAL, app
from childguard.pipeline import iter_files
from sample_media import jpeg_bytes

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two photos (one without an image suffix) and three files that are not media."""
    root = tmp_path / "upload"
    (root / "docs").mkdir(parents=True)
    (root / "a.jpg").write_bytes(jpeg_bytes(1))
    (root / "IMG_0002").write_bytes(jpeg_bytes(2))  # a photo whose name says nothing
    (root / "manifest.csv").write_text("name,size\na.jpg,14301\n")
    (root / "docs" / "readme.txt").write_text("photos of the summer camp")
    (root / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(60))
    return root


@pytest.fixture
def db(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite store (which store it is does not matter to the walk)."""
    path = tmp_path / "store.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def _records(text: str) -> dict[str, dict[str, object]]:
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {Path(str(r["path"])).name: r for r in rows}


def test_walk_skips_files_that_are_not_media_and_reports_them(folder: Path) -> None:
    skipped: list[tuple[str, str]] = []
    found = [s.path for s in iter_files([folder], on_skip=lambda p, why: skipped.append((p, why)))]
    assert sorted(Path(p).name for p in found) == ["IMG_0002", "a.jpg"]
    assert sorted(Path(p).name for p, _ in skipped) == ["Thumbs.db", "manifest.csv", "readme.txt"]
    assert all(why.startswith("not-media") for _, why in skipped)


def test_hash_of_a_folder_with_a_manifest_exits_zero_and_counts_it(folder: Path) -> None:
    result = runner.invoke(app, ["hash", str(folder)])
    assert result.exit_code == EXIT_OK, result.output
    rows = _records(result.stdout)
    assert set(rows) == {"a.jpg", "IMG_0002"}
    assert all(r["error"] is None and r["pdq"] for r in rows.values())
    assert "hashed 2 files, 0 failed, 3 skipped (not images or videos)" in result.stderr


def test_a_file_claiming_an_image_suffix_still_fails(folder: Path) -> None:
    (folder / "fake.png").write_text("not a png at all")
    result = runner.invoke(app, ["hash", str(folder)])
    assert result.exit_code == EXIT_PARTIAL
    rows = _records(result.stdout)
    assert str(rows["fake.png"]["error"]).startswith("not-an-image")
    assert "1 failed, 3 skipped" in result.stderr


def test_a_file_named_on_the_command_line_is_hashed_whatever_it_is(folder: Path) -> None:
    result = runner.invoke(app, ["hash", str(folder / "manifest.csv")])
    assert result.exit_code == EXIT_PARTIAL
    (row,) = _records(result.stdout).values()
    assert row["md5"] and str(row["error"]).startswith("not-an-image")


def test_archive_members_that_are_not_media_are_skipped(tmp_path: Path) -> None:
    archive = tmp_path / "in" / "batch.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photos/x.jpg", jpeg_bytes(3))
        zf.writestr("photos/manifest.csv", "name\nx.jpg\n")
    result = runner.invoke(app, ["hash", str(archive.parent)])  # archives are opened by default
    assert result.exit_code == EXIT_OK, result.output
    assert list(_records(result.stdout)) == ["x.jpg"]
    assert "1 skipped (not images or videos)" in result.stderr
    # With --no-archives the zip itself is not media: skipped, not a failed "image".
    plain = runner.invoke(app, ["hash", str(archive.parent), "--no-archives"])
    assert plain.exit_code == EXIT_OK, plain.output
    assert "hashed 0 files, 0 failed, 1 skipped" in plain.stderr


def test_match_of_a_folder_with_a_manifest_exits_zero(folder: Path, db: str) -> None:
    table = runner.invoke(app, ["match", "--db", db, "--plain", str(folder)])
    assert table.exit_code == EXIT_OK, table.output
    assert "0 file(s) matched, 0 failed, 3 skipped (not images or videos)" in table.stdout
    lines = runner.invoke(
        app, ["match", "--db", db, "--plain", "--format", "jsonl", "--all", str(folder)]
    )
    assert lines.exit_code == EXIT_OK, lines.output
    assert set(_records(lines.stdout)) == {"a.jpg", "IMG_0002"}
    assert "3 skipped" in lines.stderr


def test_scan_of_a_folder_with_a_manifest_exits_zero(folder: Path, db: str, tmp_path: Path) -> None:
    report = tmp_path / "report"
    result = runner.invoke(
        app, ["scan", str(folder), "--report", str(report), "--db", db, "--plain"]
    )
    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads((report / "summary.json").read_text())
    assert (summary["files"], summary["failed"], summary["skipped_not_media"]) == (2, 0, 3)
    assert "skipped (not images or videos)" in result.stdout
    assert "Skipped (not images or videos)" in (report / "report.html").read_text()
