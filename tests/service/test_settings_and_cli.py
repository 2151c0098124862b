"""Service settings from the environment with clear errors; the `key` and `serve` commands."""

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

from childguard.cli import app
from childguard.service import Settings, SettingsError

from .conftest import free_port


def test_defaults_and_environment(tmp_path: Path) -> None:
    env = {
        "CHILDGUARD_DB": str(tmp_path / "s.db"),
        "CHILDGUARD_PORT": "8123",
        "CHILDGUARD_ALLOW_ANONYMOUS_HMA": "true",
        "CHILDGUARD_MAX_REQUEST_BYTES": "4096",
    }
    settings = Settings.from_env(env)
    assert settings.db_url == f"sqlite:///{tmp_path / 's.db'}"
    assert (settings.host, settings.port) == ("127.0.0.1", 8123)
    assert settings.allow_anonymous_hma is True and settings.max_request_bytes == 4096
    assert Settings.from_env({"CHILDGUARD_DB": "sqlite://"}).allow_anonymous_hma is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CHILDGUARD_PORT": "eighty"}, "CHILDGUARD_PORT='eighty' is not a whole number"),
        ({"CHILDGUARD_PORT": "70000"}, "CHILDGUARD_PORT: port 70000 is outside 1-65535"),
        ({"CHILDGUARD_ALLOW_ANONYMOUS_HMA": "maybe"}, "is not a boolean"),
        ({"CHILDGUARD_MAX_REQUEST_BYTES": "10"}, "CHILDGUARD_MAX_REQUEST_BYTES: .* under 1024"),
        ({"CHILDGUARD_HOST": "bad host"}, "CHILDGUARD_HOST: host 'bad host' is not an address"),
        ({"CHILDGUARD_REFRESH_SECONDS": "0"}, "CHILDGUARD_REFRESH_SECONDS: .* outside 0.05-60"),
    ],
)
def test_bad_settings_say_what_to_fix(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"CHILDGUARD_DB": "sqlite://", **env})


def test_key_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    runner = CliRunner()
    made = runner.invoke(app, ["key", "create", "--role", "match", "--expires", "30d", "--db", db])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[0]
    assert key.startswith("cg_")
    listed = runner.invoke(app, ["key", "list", "--json", "--db", db])
    row = json.loads(listed.stdout.splitlines()[0])
    assert row["role"] == "match" and row["usable"] and row["expires_at"] and "key" not in row
    assert key not in listed.stdout
    assert runner.invoke(app, ["key", "revoke", str(row["id"]), "--db", db]).exit_code == 0
    again = json.loads(runner.invoke(app, ["key", "list", "--json", "--db", db]).stdout)
    assert again["revoked_at"] and not again["usable"]
    bad = runner.invoke(app, ["key", "create", "--role", "root", "--db", db])
    assert bad.exit_code == 2 and "unknown role" in bad.output
    assert runner.invoke(app, ["key", "revoke", "99", "--db", db]).exit_code == 2


def test_serve_starts_on_embedded_defaults(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CHILDGUARD_HOME": str(tmp_path / "home")}
    env.pop("CHILDGUARD_DB", None)
    cli = Path(sys.executable).with_name("childguard")
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        answer = httpx.get(f"http://127.0.0.1:{port}/m/lookup?signal_type=pdq&signal=00")
        assert answer.status_code == 401
        assert (tmp_path / "home" / "childguard.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_serve_refuses_bad_settings(tmp_path: Path) -> None:
    env = {**os.environ, "CHILDGUARD_HOME": str(tmp_path), "CHILDGUARD_MAX_REQUEST_BYTES": "x"}
    cli = Path(sys.executable).with_name("childguard")
    done = subprocess.run(
        [str(cli), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "CHILDGUARD_MAX_REQUEST_BYTES='x' is not a whole number" in done.stderr
