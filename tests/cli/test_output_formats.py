"""One output convention: listing commands take `--format table|json|jsonl|csv` (`--json` short
for `--format json`) and `-o/--output` (format from the suffix when none is named); `bank
export` writes to `-o`, its old positional output kept one release with a warning."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from childguard.banks import create_bank, import_records
from childguard.banks.records import EntryRecord
from childguard.cli import EXIT_OK, EXIT_USAGE, app
from childguard.store import Store

runner = CliRunner()


def cg(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def banks(store: Store, store_url: str) -> str:
    create_bank(store, "hotline", "known-abuse", owner="Hotline X", actor="t")
    create_bank(store, "allowed", "allow", actor="t")
    md5s = [hashlib.md5(str(i).encode()).hexdigest() for i in range(3)]
    records = [
        EntryRecord("md5", h, classification_scheme="vics-UK", classification_label="1")
        for h in md5s
    ]
    import_records(store, "hotline", records, actor="t", source="list-a")
    return store_url


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_bank_list_in_every_format(banks: str) -> None:
    table = cg("bank", "list", "--db", banks)
    assert table.exit_code == EXIT_OK, table.output
    assert "hotline" in table.stdout and "Hotline X" in table.stdout
    as_json = json.loads(cg("bank", "list", "--db", banks, "--format", "json").stdout)
    assert [(b["name"], b["entries"]) for b in as_json] == [("allowed", 0), ("hotline", 3)]
    assert json.loads(cg("bank", "list", "--db", banks, "--json").stdout) == as_json
    lines = _jsonl(cg("bank", "list", "--db", banks, "--format", "jsonl").stdout)
    assert lines == as_json
    rows = _csv(cg("bank", "list", "--db", banks, "--format", "csv").stdout)
    assert [(r["name"], r["kind"], r["entries"], r["enabled"]) for r in rows] == [
        ("allowed", "allow", "0", "true"),
        ("hotline", "known-abuse", "3", "true"),
    ]


def test_bank_list_to_a_file_takes_the_format_from_the_suffix(banks: str, tmp_path: Path) -> None:
    out = tmp_path / "banks.csv"
    result = cg("bank", "list", "--db", banks, "-o", str(out))
    assert result.exit_code == EXIT_OK, result.output
    assert result.stdout == ""
    assert "2 rows written to" in result.stderr
    assert [r["name"] for r in _csv(out.read_text())] == ["allowed", "hotline"]
    named = tmp_path / "banks.out"
    assert (
        cg("bank", "list", "--db", banks, "--output", str(named), "--format", "jsonl").exit_code
        == 0
    )
    assert len(_jsonl(named.read_text())) == 2


def test_bad_format_choices_are_usage_errors_naming_the_formats(banks: str, tmp_path: Path) -> None:
    unknown = cg("bank", "list", "--db", banks, "--format", "xml")
    assert unknown.exit_code == EXIT_USAGE
    assert "table, json, jsonl, csv" in unknown.stderr
    both = cg("bank", "list", "--db", banks, "--json", "--format", "csv")
    assert both.exit_code == EXIT_USAGE and "--json" in both.stderr
    nowhere = cg("bank", "list", "--db", banks, "-o", str(tmp_path / "no" / "banks.csv"))
    assert nowhere.exit_code == EXIT_USAGE and "no folder" in nowhere.stderr


def test_bank_stats_in_every_format(banks: str) -> None:
    data = json.loads(cg("bank", "stats", "hotline", "--db", banks, "--json").stdout)
    assert data["by_signal_type"] == {"md5": 3}
    assert data["by_classification"] == {"vics-UK:1": 3}
    assert datetime_like(data["first_imported"])
    (line,) = _jsonl(cg("bank", "stats", "hotline", "--db", banks, "--format", "jsonl").stdout)
    assert line == data
    rows = _csv(cg("bank", "stats", "hotline", "--db", banks, "--format", "csv").stdout)
    assert [(r["group"], r["key"], r["entries"]) for r in rows] == [
        ("total", "", "3"),
        ("signal_type", "md5", "3"),
        ("classification", "vics-UK:1", "3"),
        ("source", "list-a", "3"),
    ]
    table = cg("bank", "stats", "hotline", "--db", banks)
    assert table.exit_code == EXIT_OK and "entries" in table.stdout


def datetime_like(text: str) -> bool:
    return isinstance(text, str) and "T" in text


def test_bank_export_takes_dash_o(banks: str, tmp_path: Path) -> None:
    out = tmp_path / "hotline.csv"
    result = cg("bank", "export", "hotline", "-o", str(out), "--db", banks)
    assert result.exit_code == EXIT_OK, result.output
    assert "deprecated" not in result.stderr
    assert len(_csv(out.read_text())) == 3
    to_stdout = cg("bank", "export", "hotline", "--output", "-", "-f", "plain", "--db", banks)
    assert to_stdout.exit_code == EXIT_OK
    assert len(to_stdout.stdout.split()) == 3


def test_bank_export_positional_output_still_works_with_a_warning(
    banks: str, tmp_path: Path
) -> None:
    out = tmp_path / "old.csv"
    result = cg("bank", "export", "hotline", str(out), "--db", banks)
    assert result.exit_code == EXIT_OK, result.output
    assert "deprecated" in result.stderr and f"-o {out}" in result.stderr
    assert len(_csv(out.read_text())) == 3
    clash = cg("bank", "export", "hotline", str(out), "-o", str(tmp_path / "b.csv"), "--db", banks)
    assert clash.exit_code == EXIT_USAGE
    none = cg("bank", "export", "hotline", "--db", banks)
    assert none.exit_code == EXIT_USAGE and "-o" in none.stderr


def test_audit_list_takes_json_short_form_and_output(banks: str, tmp_path: Path) -> None:
    events = json.loads(cg("audit", "list", "--db", banks, "--json").stdout)
    assert [e["action"] for e in events][-2:] == ["bank.create", "bank.create"]
    out = tmp_path / "audit.jsonl"
    result = cg("audit", "list", "--db", banks, "-o", str(out))
    assert result.exit_code == EXIT_OK, result.output
    assert _jsonl(out.read_text()) == events
    rows = _csv(cg("audit", "list", "--db", banks, "--format", "csv").stdout)
    assert [r["action"] for r in rows] == [e["action"] for e in events]
    assert json.loads(rows[0]["details"]) == events[0]["details"]
