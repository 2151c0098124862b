"""Organisations can be managed from the CLI: `org edit` fixes a mistyped webhook (and queues
the undelivered alerts again), `org remove` says what goes with the organisation and asks,
and `protect remove` asks too, unless `--yes`."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from childguard.cli import EXIT_OK, EXIT_USAGE, app
from childguard.store import open_store
from childguard.store.models import AuditEvent, Bank, BankEntry
from sample_media import jpeg_bytes


def run(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.output


def _org_with_photo(db: str, tmp_path: Path) -> int:
    album = tmp_path / "album"
    album.mkdir()
    (album / "camp.jpg").write_bytes(jpeg_bytes(3))
    code, text = run("org", "add", "Scouts", "--webhook", "http://typo.example/hok", "--db", db)
    assert code == EXIT_OK, text
    code, text = run(
        "protect", "register", str(album), "--org", "Scouts", "--title", "camp.jpg=Camp", "--db", db
    )
    assert code == EXIT_OK, text
    code, text = run("protect", "list", "--json", "--db", db)
    return int(json.loads(text)[0]["id"])


def test_org_edit_fixes_a_mistyped_webhook_and_is_audited(store_url: str, tmp_path: Path) -> None:
    _org_with_photo(store_url, tmp_path)
    code, text = run("org", "add", "Scouts", "--db", store_url)
    assert code == EXIT_USAGE and "org edit" in text
    code, text = run(
        "org", "edit", "Scouts", "--webhook", "https://hooks.scouts.example/alerts",
        "--email", "leader@scouts.example", "--daily-digest", "--db", store_url,
    )  # fmt: skip
    assert code == EXIT_OK, text
    code, text = run("org", "show", "Scouts", "--secret", "--db", store_url)
    shown = json.loads(text)
    assert shown["webhook_url"] == "https://hooks.scouts.example/alerts"
    assert shown["emails"] == ["leader@scouts.example"] and shown["alert_mode"] == "daily"
    assert shown["webhook_secret"]
    code, text = run("org", "edit", "Scouts", "--webhook", "ftp://nope", "--db", store_url)
    assert code == EXIT_USAGE and "http(s)" in text
    code, text = run("org", "edit", "Nobody", "--immediate", "--db", store_url)
    assert code == EXIT_USAGE and "no organisation" in text
    with open_store(store_url) as store, store.session() as s:
        query = select(AuditEvent.action).where(AuditEvent.action == "org.update")
        actions = s.scalars(query).all()
    assert actions == ["org.update"]


def test_org_remove_says_what_goes_and_asks(store_url: str, tmp_path: Path) -> None:
    _org_with_photo(store_url, tmp_path)
    code, text = run("org", "remove", "Scouts", "--db", store_url, input="n\n")
    assert code == EXIT_USAGE
    assert "1 protected photo" in text and "protected:Scouts" in text
    assert json.loads(run("org", "list", "--json", "--db", store_url)[1])[0]["name"] == "Scouts"
    code, text = run("org", "remove", "Scouts", "--yes", "--db", store_url)
    assert code == EXIT_OK, text
    assert json.loads(run("org", "list", "--json", "--db", store_url)[1]) == []
    with open_store(store_url) as store, store.session() as s:
        assert s.scalar(select(Bank).where(Bank.name == "protected:Scouts")) is None
        assert s.scalars(select(BankEntry)).all() == []
        removed = s.scalar(select(AuditEvent).where(AuditEvent.action == "org.remove"))
        assert removed is not None and (removed.details or {}).get("photos") == 1
    code, text = run("org", "add", "Scouts", "--db", store_url)  # the name is free again
    assert code == EXIT_OK, text


def test_protect_remove_asks_unless_yes(store_url: str, tmp_path: Path) -> None:
    photo_id = _org_with_photo(store_url, tmp_path)
    code, _ = run("protect", "remove", str(photo_id), "--db", store_url, input="n\n")
    assert code == EXIT_USAGE
    assert len(json.loads(run("protect", "list", "--json", "--db", store_url)[1])) == 1
    code, text = run("protect", "remove", str(photo_id), "--yes", "--db", store_url)
    assert code == EXIT_OK, text
    assert json.loads(run("protect", "list", "--json", "--db", store_url)[1]) == []


def test_org_remove_is_refused_while_users_belong_to_it(store_url: str, tmp_path: Path) -> None:
    _org_with_photo(store_url, tmp_path)
    code, text = run(
        "user", "add", "leader", "--org", "Scouts", "--password-stdin", "--db", store_url,
        input="a long enough passphrase 42\n",
    )  # fmt: skip
    assert code == EXIT_OK, text
    code, text = run("org", "remove", "Scouts", "--yes", "--db", store_url)
    assert code == EXIT_USAGE and "user account" in text
    assert json.loads(run("org", "list", "--json", "--db", store_url)[1])[0]["name"] == "Scouts"
