"""The inputs of a local scan: `--from-list` (paths, folders and URLs, fetched under the SSRF
policy), a path met twice, and a resume after a crash left half a line in the checkpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from childguard.cli import app
from childguard.matcher import Matcher
from childguard.pipeline import hash_bytes
from childguard.scan import ScanOptions, run_scan
from childguard.scan.files import trim_torn_tail
from childguard.store.db import Store
from local_http import serving
from sample_media import jpeg_bytes

SERVED = jpeg_bytes(77)


class _Site(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/a.jpg":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        self.wfile.write(SERVED)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serving(_Site) as url:
        yield url


def _records(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "hashes.jsonl").read_text().splitlines()
    return {r["path"]: r for r in map(json.loads, lines)}


def test_a_list_names_files_folders_and_urls(store: Store, site: str, tmp_path: Path) -> None:
    from childguard.banks import EntryRecord, create_bank, import_records

    create_bank(store, "list", "known-abuse", actor="t")
    md5 = hash_bytes(SERVED).value("md5") or ""
    import_records(store, "list", [EntryRecord("md5", md5)], actor="t")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "one.jpg").write_bytes(jpeg_bytes(1))
    (folder / "readme.txt").write_text("not media")
    (tmp_path / "two.jpg").write_bytes(jpeg_bytes(2))
    listing = tmp_path / "list.txt"
    listing.write_text(
        f"# evidence\n{folder}\n\n{tmp_path / 'two.jpg'}\n{site}/a.jpg\n{site}/b.jpg\n"
        f"{tmp_path / 'gone.jpg'}\n{tmp_path / 'two.jpg'}\n"
    )
    summary = run_scan(
        ScanOptions(
            roots=[], report_dir=tmp_path / "out", workers=1, from_list=listing, allow_private=True
        ),
        Matcher(store, index_base=tmp_path / "idx"),
    )
    records = _records(tmp_path / "out")
    # The folder's photo, the named photo (listed twice: hashed once), both URLs, the missing file.
    assert list(records) == [
        str(folder / "one.jpg"),
        str(tmp_path / "two.jpg"),
        f"{site}/a.jpg",
        f"{site}/b.jpg",
        str(tmp_path / "gone.jpg"),
    ]
    assert records[f"{site}/a.jpg"]["md5"] == md5
    assert records[f"{site}/b.jpg"]["error"].startswith("fetch-failed: ")
    assert records[str(tmp_path / "gone.jpg")]["error"].startswith("unreadable")
    assert (summary.files, summary.matched_files, summary.skipped_not_media) == (5, 1, 1)

    # Without --allow-private, loopback is refused by the SSRF policy, and never fetched.
    done = CliRunner().invoke(
        app,
        [
            "scan",
            "--from-list",
            str(listing),
            "--report",
            str(tmp_path / "cli"),
            "--db",
            store.engine.url.render_as_string(hide_password=False),
            "-j",
            "1",
        ],
    )
    assert done.exit_code == 1, done.output  # files failed, nothing matched
    refused = _records(tmp_path / "cli")[f"{site}/a.jpg"]
    assert refused["error"].startswith("fetch-refused: ") and refused["md5"] is None


def test_overlapping_roots_hash_each_file_once(store: Store, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    (disk / "sub").mkdir(parents=True)
    (disk / "sub" / "a.jpg").write_bytes(jpeg_bytes(3))
    (disk / "b.jpg").write_bytes(jpeg_bytes(4))
    summary = run_scan(
        ScanOptions(roots=[disk, disk / "sub"], report_dir=tmp_path / "out", workers=1),
        Matcher(store, index_base=tmp_path / "idx"),
    )
    assert summary.files == 2
    assert sorted(_records(tmp_path / "out")) == [str(disk / "b.jpg"), str(disk / "sub" / "a.jpg")]


def test_resume_after_a_torn_checkpoint_line(store: Store, tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    for seed in range(4):
        (disk / f"p{seed}.jpg").write_bytes(jpeg_bytes(seed))
    out = tmp_path / "out"
    matcher = Matcher(store, index_base=tmp_path / "idx")
    run_scan(ScanOptions(roots=[disk], report_dir=out, workers=1), matcher)
    whole = (out / "hashes.jsonl").read_text()
    lines = whole.splitlines(keepends=True)
    # A crash in the middle of the third record's line.
    (out / "hashes.jsonl").write_text("".join(lines[:2]) + lines[2][:40])
    summary = run_scan(ScanOptions(roots=[disk], report_dir=out, workers=1, resume=True), matcher)
    assert (summary.files, summary.skipped_resume) == (4, 2)
    assert (out / "hashes.jsonl").read_text() == whole


def test_trim_torn_tail_keeps_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    for text, kept in (
        ("", ""),
        ("a\n", "a\n"),
        ("a\nb", "a\n"),
        ("torn", ""),
        ("a\nb\n", "a\nb\n"),
    ):
        path.write_text(text)
        trim_torn_tail(path)
        assert path.read_text() == kept
    trim_torn_tail(tmp_path / "missing.jsonl")
    assert not (tmp_path / "missing.jsonl").exists()
