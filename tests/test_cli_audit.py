"""`childguard audit list|export` over a real store (SQLite and PostgreSQL), with events made
by the library's own audited writes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from childguard.accounts import create_key, revoke_key
from childguard.banks import create_bank
from childguard.cli import EXIT_OK, EXIT_USAGE, app
from childguard.protect.organisations import create_organisation
from childguard.store import Store, audit
from childguard.store.audit_log import AuditFilter, iter_events, list_events

runner = CliRunner()


@pytest.fixture
def logged(store: Store, store_url: str) -> dict[str, Any]:
    """Five events: two keys made by alice, one revoked by bob, a bank and an organisation."""
    first, _ = create_key(store, "match", actor="cli:alice", name="platform A")
    second, _ = create_key(store, "curate", actor="cli:alice", name="platform B")
    revoke_key(store, first.id, actor="cli:bob")
    create_bank(store, "hotline", "known-abuse", actor="cli:bob")
    with store.session() as s:
        create_organisation(s, "Scouts", actor="cli:carol")
    return {"db": store_url, "first": first.id, "second": second.id}


def _run(*args: str) -> Any:
    return runner.invoke(app, ["audit", *args])


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_list_is_newest_first_and_fits_80_columns(store: Store, logged: dict[str, Any]) -> None:
    create_bank(store, "b" * 150, "allow", actor="cli:" + "a" * 60)
    result = _run("list", "--db", logged["db"])
    assert result.exit_code == EXIT_OK, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "at", "(UTC)", "actor", "action", "object"]
    assert [line.split()[4] for line in lines[1:]] == [
        "bank.create",
        "org.create",
        "bank.create",
        "key.revoke",
        "key.create",
        "key.create",
    ]
    assert all(len(line) <= 80 for line in lines)
    assert f"api_key:{logged['first']}" in lines[4]
    assert lines[1].split()[3].endswith("~")  # the long actor, cut to its column


def test_list_filters(logged: dict[str, Any]) -> None:
    db = logged["db"]

    def actions(*args: str) -> list[str]:
        result = _run("list", "--db", db, "--format", "jsonl", *args)
        assert result.exit_code == EXIT_OK, result.output
        return [e["action"] for e in _jsonl(result.stdout)]

    assert actions("--actor", "cli:alice") == ["key.create", "key.create"]
    assert actions("--action", "key.") == ["key.revoke", "key.create", "key.create"]
    assert actions("--action", "key") == ["key.revoke", "key.create", "key.create"]
    assert actions("--action", "key.create") == ["key.create", "key.create"]
    assert actions("--action", "ke") == []
    assert actions("--object", f"api_key:{logged['first']}") == ["key.revoke", "key.create"]
    assert actions("--object", "bank") == ["bank.create"]
    assert actions("--since", "2999-01-01") == []
    assert actions("--until", "2000-01-01T00:00:00Z") == []
    assert len(actions("--since", "1h", "--until", "2999-01-01")) == 5
    assert actions("--limit", "2") == ["org.create", "bank.create"]


def test_list_formats(logged: dict[str, Any]) -> None:
    db = logged["db"]
    as_json = _run("list", "--db", db, "--format", "json", "--action", "bank")
    assert as_json.exit_code == EXIT_OK
    (event,) = json.loads(as_json.stdout)
    assert event["actor"] == "cli:bob" and event["object_type"] == "bank"
    assert event["details"]["kind"] == "known-abuse"
    as_csv = _run("list", "--db", db, "--format", "csv", "--actor", "cli:alice")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["action"] for r in rows] == ["key.create", "key.create"]
    assert json.loads(rows[0]["details"])["name"] == "platform B"
    assert rows[0]["at"].endswith("+00:00")


def test_usage_errors_exit_2(logged: dict[str, Any], tmp_path: Path) -> None:
    db = logged["db"]
    cases = [
        ["list", "--format", "xml"],
        ["list", "--since", "yesterday"],
        ["list", "--object", "api_key:"],
        ["export", "-o", str(tmp_path / "log.txt")],
        ["export", "-o", str(tmp_path / "log.csv"), "--format", "xml"],
        ["export", "-o", str(tmp_path / "none" / "log.csv")],
    ]
    for args in cases:
        result = _run(*args, "--db", db)
        assert result.exit_code == EXIT_USAGE, (args, result.output)
        assert "error:" in result.output
    assert not (tmp_path / "log.txt").exists()
    for args in (["--help"], ["list", "--help"], ["export", "--help"]):
        assert _run(*args).exit_code == EXIT_OK


def test_export_streams_thousands_by_suffix(
    store: Store, logged: dict[str, Any], tmp_path: Path
) -> None:
    with store.session() as s:
        for i in range(3_000):
            audit.record(
                s,
                actor="bulk",
                action="bulk.test",
                object_type="thing",
                object_id=i,
                details={"i": i},
            )
    out = tmp_path / "audit.csv"
    result = _run("export", "--db", logged["db"], "-o", str(out), "--actor", "bulk")
    assert result.exit_code == EXIT_OK, result.output
    assert "3000 audit events written" in result.stdout
    rows = list(csv.DictReader(out.open(newline="")))
    assert [int(r["object_id"]) for r in rows] == list(range(3_000))
    ids = [int(r["id"]) for r in rows]
    assert ids == sorted(set(ids))  # oldest first, none twice across the batches

    whole = tmp_path / "audit.jsonl"
    result = _run("export", "--db", logged["db"], "-o", str(whole))
    assert "3005 audit events written" in result.stdout
    events = _jsonl(whole.read_text())
    assert events[0]["action"] == "key.create" and events[0]["actor"] == "cli:alice"
    assert events[-1]["details"] == {"i": 2_999}

    keys_only = _run(
        "export", "--db", logged["db"], "-o", "-", "--format", "csv", "--action", "key."
    )
    assert keys_only.exit_code == EXIT_OK
    assert [r["action"] for r in csv.DictReader(io.StringIO(keys_only.stdout))] == [
        "key.create",
        "key.create",
        "key.revoke",
    ]


def test_an_export_is_a_snapshot_read_in_batches(store: Store, logged: dict[str, Any]) -> None:
    with store.session() as s:
        for i in range(250):
            audit.record(s, actor="bulk", action="bulk.test", object_type="thing", object_id=i)
    events = iter_events(store, AuditFilter(action="bulk"), batch=100)
    first = next(events)
    with store.session() as s:  # written while the export runs: not in it
        audit.record(s, actor="bulk", action="bulk.late", object_type="thing", object_id="late")
    rest = list(events)
    assert [int(e.object_id) for e in [first, *rest]] == list(range(250))
    later = list_events(store, action="bulk.late")
    assert [e.object_id for e in later] == ["late"]
    page = list_events(store, action="bulk", limit=100, after_id=first.id)
    assert [int(e.object_id) for e in page] == list(range(1, 101))
    newest = list_events(store, action="bulk", limit=2, newest_first=True)
    assert [e.object_id for e in newest] == ["late", "249"]
