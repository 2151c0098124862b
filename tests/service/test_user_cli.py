"""`childguard user ...`, `childguard role list`, `key create --org`, and the first admin that
`childguard serve` makes on a store with no users (printed once, then signing in with it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from childguard.accounts import LoginFailed, authenticate, ensure_first_admin, list_keys, list_users
from childguard.cli import app
from childguard.cli.cmd_serve import first_admin
from childguard.protect.organisations import create_organisation
from childguard.store import open_store

from .conftest import free_port

PASSWORD = "a long enough password"
runner = CliRunner()


def _json(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_user_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "users.db")
    with open_store(db) as store, store.session() as session:
        create_organisation(session, "Example School")
    add = ["user", "add", "Alice", "--role", "curate", "--role", "match"]
    details = ["--org", "Example School", "--email", "alice@example.org", "--password-stdin"]
    added = runner.invoke(
        app, [*add, *details, "--format", "json", "--db", db], input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.output
    row = _json(added.stdout)[0]
    assert row["username"] == "alice" and row["roles"] == ["curate", "match"]
    assert row["organisation"] == "Example School" and PASSWORD not in added.output
    prompted = runner.invoke(
        app, ["user", "add", "bob", "--db", db], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert "user 'bob' added" in prompted.stdout
    listed = _json(runner.invoke(app, ["user", "list", "--format", "jsonl", "--db", db]).stdout)
    assert [u["username"] for u in listed] == ["alice", "bob"]
    table = runner.invoke(app, ["user", "list", "--db", db])
    assert table.exit_code == 0 and "alice" in table.stdout and "Example School" in table.stdout
    assert (
        runner.invoke(app, ["user", "grant", "bob", "analyst", "hash", "--db", db]).exit_code == 0
    )
    revoked = runner.invoke(app, ["user", "revoke", "bob", "hash", "--db", db])
    assert revoked.exit_code == 0 and "holds: analyst" in revoked.stdout
    shown = _json(
        runner.invoke(app, ["user", "show", "bob", "--format", "json", "--db", db]).stdout
    )
    assert shown[0]["roles"] == ["analyst"] and shown[0]["enabled"] is True
    assert runner.invoke(app, ["user", "disable", "bob", "--db", db]).exit_code == 0
    with open_store(db) as store, pytest.raises(LoginFailed, match="wrong username or password"):
        authenticate(store, "bob", PASSWORD)
    assert runner.invoke(app, ["user", "enable", "bob", "--db", db]).exit_code == 0
    changed = runner.invoke(
        app, ["user", "passwd", "bob", "--password-stdin", "--db", db], input="another password!\n"
    )
    assert changed.exit_code == 0, changed.output
    with open_store(db) as store:
        assert authenticate(store, "bob", "another password!").username == "bob"
    kept = runner.invoke(app, ["user", "remove", "bob", "--db", db], input="n\n")
    assert kept.exit_code == 2
    assert runner.invoke(app, ["user", "remove", "bob", "--yes", "--db", db]).exit_code == 0
    with open_store(db) as store:
        assert [u.username for u in list_users(store)] == ["alice"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["user", "show", "nobody"], "", "no user named 'nobody'"),
        (["user", "add", "carol", "--role", "root", "--password-stdin"], "", "unknown role 'root'"),
        (["user", "add", "carol", "--password-stdin"], "short\n", "at least 12"),
        (["user", "add", "carol", "--password-stdin"], "\n", "stdin gave no password"),
        (["user", "add", "c d", "--password-stdin"], PASSWORD, "bad username"),
        (["user", "add", "carol", "--org", "Nowhere"], "", "no organisation named 'Nowhere'"),
        (["user", "list", "--format", "xml"], "", "unknown --format"),
        (["user", "grant", "nobody", "hash"], "", "no user named"),
        (["user", "passwd", "nobody", "--password-stdin"], PASSWORD, "no user named"),
        (["key", "create", "--role", "match", "--org", "Nowhere"], "", "no organisation named"),
    ],
)
def test_errors_say_what_to_fix_with_exit_code_2(
    tmp_path: Path, args: list[str], stdin: str, message: str
) -> None:
    db = tmp_path / "e.db"
    open_store(str(db)).close()  # errors of the arguments, on a store that exists
    done = runner.invoke(app, [*args, "--db", str(db)], input=stdin)
    assert done.exit_code == 2, done.output
    assert message in done.output


def test_every_command_has_help() -> None:
    for group in ("user", "role"):
        assert runner.invoke(app, [group, "--help"]).exit_code == 0
    for command in ("add", "list", "show", "passwd", "grant", "revoke", "disable", "enable"):
        shown = runner.invoke(app, ["user", command, "--help"])
        assert shown.exit_code == 0 and "--db" in shown.output
    assert runner.invoke(app, ["user", "remove", "--help"]).exit_code == 0


def test_role_list_reads_the_route_table() -> None:
    done = runner.invoke(app, ["role", "list", "--format", "jsonl"])
    assert done.exit_code == 0, done.output
    roles = {r["role"]: r["routes"] for r in _json(done.stdout)}
    assert set(roles) >= {"hash", "match", "curate", "admin", "(signed in)", "(public)"}
    assert "GET /v1/banks" in roles["curate"] and "POST /v1/hash" in roles["hash"]
    assert "GET /v1/me" in roles["(signed in)"] and "POST /v1/session" in roles["(public)"]
    assert not any("/v1/banks" in r for r in roles["match"])


def test_key_create_for_an_organisation(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    with open_store(db) as store, store.session() as session:
        org_id = create_organisation(session, "Example School").id
    made = runner.invoke(
        app, ["key", "create", "--role", "org-admin", "--org", "Example School", "--db", db]
    )
    assert made.exit_code == 0, made.output
    with open_store(db) as store:
        assert [k.organisation_id for k in list_keys(store)] == [org_id]


def test_first_admin_with_a_given_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(str(tmp_path / "a.db")) as store:
        monkeypatch.setenv("CHILDGUARD_ADMIN_PASSWORD", "the chosen admin password")
        first_admin(store)
        printed = capsys.readouterr()
        assert "created the user 'admin'" in printed.err
        assert "the chosen admin password" not in printed.err + printed.out
        assert authenticate(store, "admin", "the chosen admin password").roles == ("admin",)
        first_admin(store)  # users exist: nothing more
        assert capsys.readouterr().err == ""


def test_serve_makes_the_first_admin_once_and_it_can_sign_in(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"
    env = {**os.environ, "CHILDGUARD_HOME": str(home)}
    for name in ("CHILDGUARD_DB", "CHILDGUARD_ADMIN_PASSWORD", "CHILDGUARD_CONFIG"):
        env.pop(name, None)
    cli = Path(sys.executable).with_name("childguard")
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("password:" in ln for ln in lines):
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
        password = next(ln.split("password:", 1)[1].strip() for ln in lines if "password:" in ln)
        assert any("username: admin" in ln for ln in lines)
        base = f"http://127.0.0.1:{port}"
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/status/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.post(
            f"{base}/v1/session", json={"username": "admin", "password": password}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["user"]["roles"] == ["admin"]
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    with open_store(f"sqlite:///{home / 'childguard.db'}") as store:
        assert ensure_first_admin(store) is None
        assert [u.username for u in list_users(store)] == ["admin"]
