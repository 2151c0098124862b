"""Settings from a TOML file under the environment and the options, with errors naming the
file, the key and what it accepts; `serve` refuses a bad file before anything listens; the
`bank update` and `bank release` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childguard.banks import create_bank, get_bank, quarantine_bank
from childguard.cli import app
from childguard.service import Settings, SettingsError
from childguard.service.config import env_name
from childguard.store import open_store


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "childguard.toml"
    path.write_text(text)
    return path


def test_file_then_environment_then_options(tmp_path: Path) -> None:
    path = _file(
        tmp_path,
        f'db_url = "{tmp_path / "f.db"}"\nport = 9000\nworkers = 3\n'
        '[limits]\nrate_limit_per_key = "10/second"\nrequest_timeout_seconds = 5\n'
        "limit_concurrency = 100\n[flood]\nbank_match_cap_per_minute = 0\n",
    )
    from_file = Settings.from_env({}, config_file=path)
    assert from_file.db_url == f"sqlite:///{tmp_path / 'f.db'}"
    assert (from_file.port, from_file.workers, from_file.limit_concurrency) == (9000, 3, 100)
    assert from_file.rate_limit_per_key == "10/second"
    assert from_file.request_timeout_seconds == 5.0
    assert from_file.bank_match_cap_per_minute == 0
    assert from_file.rate_limit_per_client == "600/minute"  # the default where unset
    env = {"CHILDGUARD_CONFIG": str(path), "CHILDGUARD_PORT": "9001"}
    assert Settings.from_env(env).port == 9001  # the environment over the file
    assert Settings.from_env(env, port=9002).port == 9002  # an option over both
    assert (
        Settings.from_env({**env, "CHILDGUARD_LIMIT_CONCURRENCY": "none"}).limit_concurrency is None
    )


def test_every_setting_can_come_from_the_environment() -> None:
    assert env_name("db_url") == "CHILDGUARD_DB"
    assert env_name("request_timeout_seconds") == "CHILDGUARD_REQUEST_TIMEOUT_SECONDS"
    env = {
        "CHILDGUARD_DB": "sqlite://",
        "CHILDGUARD_RATE_LIMIT_PER_CLIENT": "",
        "CHILDGUARD_TIMEOUT_GRACEFUL_SHUTDOWN": "2.5",
        "CHILDGUARD_LOG_LEVEL": "debug",
    }
    settings = Settings.from_env(env)
    assert settings.rate_limit_per_client == ""  # no limit
    assert settings.timeout_graceful_shutdown == 2.5
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 1", r"childguard.toml: prot: not a setting \(did you mean 'port'\?\)"),
        ('port = "80"', r"childguard.toml: port: want a whole number, got '80'"),
        ("[server]\nport = 0", r"childguard.toml: server.port: port 0 is outside 1-65535"),
        ("allow_anonymous_hma = 1", r"allow_anonymous_hma: want true or false, got 1"),
        ('rate_limit_per_key = "lots"', r"rate_limit_per_key: .*'lots' is not a rate"),
        ("request_timeout_seconds = 0", r"request_timeout_seconds 0 is outside 0.1-3600 seconds"),
        ("bank_match_cap_per_minute = -1", r"bank_match_cap_per_minute -1 is negative"),
        ('log_level = "LOUD"', r"log_level 'LOUD' is not one of DEBUG, INFO"),
        ("port = 1\n[a]\nport = 2", r"a.port: set twice \(also as port\)"),
        ("[a]\n[a.b]\nport = 2", r"a.b: tables nest one level only"),
        ("port = ", r"childguard.toml: not valid TOML"),
    ],
)
def test_bad_files_name_the_file_the_key_and_what_it_accepts(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"CHILDGUARD_DB": "sqlite://"}, config_file=path)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"nope\.toml: cannot read the config file"):
        Settings.from_env({"CHILDGUARD_CONFIG": str(tmp_path / "nope.toml")})


def test_serve_refuses_a_bad_file_before_anything_listens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHILDGUARD_HOME", str(tmp_path))
    monkeypatch.delenv("CHILDGUARD_DB", raising=False)
    path = _file(tmp_path, "[limits]\nrate_limit_per_client = 600\n")
    done = CliRunner().invoke(app, ["serve", "--config", str(path)])
    assert done.exit_code == 2
    assert "limits.rate_limit_per_client: want a string, got 600" in done.output
    assert not (tmp_path / "childguard.db").exists()


def test_bank_update_and_release_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "banks.db")
    store = open_store(db)
    create_bank(store, "B", "known-abuse", actor="test")
    runner = CliRunner()
    updated = runner.invoke(app, ["bank", "update", "B", "--match-cap", "7", "--json", "--db", db])
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.stdout)["match_cap_per_minute"] == 7
    again = runner.invoke(app, ["bank", "update", "B", "--match-cap", "default", "--db", db])
    assert again.exit_code == 0 and get_bank(store, "B").match_cap_per_minute is None
    bad = runner.invoke(app, ["bank", "update", "B", "--match-cap", "lots", "--db", db])
    assert bad.exit_code == 2 and "--match-cap wants a number" in bad.output
    assert runner.invoke(app, ["bank", "update", "B", "--db", db]).exit_code == 2
    quarantine_bank(store, "B", "test flood", actor="test")
    released = runner.invoke(app, ["bank", "release", "B", "--db", db])
    assert released.exit_code == 0, released.output
    assert "test flood" in released.stdout
    assert get_bank(store, "B").quarantined_at is None
    assert "not quarantined" in runner.invoke(app, ["bank", "release", "B", "--db", db]).stdout
    store.close()
