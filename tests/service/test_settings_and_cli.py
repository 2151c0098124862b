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

from childguard.accounts import create_key
from childguard.cli import app
from childguard.service import Settings, SettingsError
from childguard.store import open_store

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
    row = json.loads(listed.stdout)[0]
    assert row["role"] == "match" and row["usable"] and row["expires_at"] and "key" not in row
    assert key not in listed.stdout
    assert runner.invoke(app, ["key", "revoke", str(row["id"]), "--yes", "--db", db]).exit_code == 0
    again = json.loads(runner.invoke(app, ["key", "list", "--json", "--db", db]).stdout)[0]
    assert again["revoked_at"] and not again["usable"]
    bad = runner.invoke(app, ["key", "create", "--role", "root", "--db", db])
    assert bad.exit_code == 2 and "unknown role" in bad.output
    assert runner.invoke(app, ["key", "revoke", "99", "--db", db]).exit_code == 2


def _one_client_per_worker(
    base: str, workers: int, proc: subprocess.Popen[bytes]
) -> dict[str, httpx.Client]:
    """A client (one kept-alive connection) on each worker, each worker ready: new
    connections are opened until every worker has answered `/status` with 200 on one."""
    clients: dict[str, httpx.Client] = {}
    deadline = time.monotonic() + 60
    while len(clients) < workers:
        assert time.monotonic() < deadline and proc.poll() is None, sorted(clients)
        client = httpx.Client(base_url=base, timeout=10)
        try:
            answer = client.get("/status")
            while answer.status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
                answer = client.get("/status")  # the same connection: the same worker
        except httpx.TransportError:
            client.close()
            time.sleep(0.1)
            continue
        worker = answer.headers["x-childguard-worker"]
        if answer.status_code != 200 or worker in clients:
            client.close()
        else:
            clients[worker] = client
    return clients


def test_serve_starts_on_embedded_defaults_with_two_workers(tmp_path: Path) -> None:
    """`childguard serve --workers 2` on the default SQLite store: a signal added through one
    worker is matched by each of the two workers (told apart by `X-Childguard-Worker`)
    within a second; each worker's `/metrics` counts both workers' requests (a multiprocess
    folder under the data dir, removed when the service stops)."""
    port = free_port()
    home = tmp_path / "home"
    env = {**os.environ, "CHILDGUARD_HOME": str(home)}
    env.pop("CHILDGUARD_DB", None)
    cli = Path(sys.executable).with_name("childguard")
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    clients: dict[str, httpx.Client] = {}
    folders: list[Path] = []
    try:
        clients = _one_client_per_worker(base, 2, proc)
        store = open_store(f"sqlite:///{home / 'childguard.db'}")
        curate = {"Authorization": f"Bearer {create_key(store, 'curate', actor='t')[1]}"}
        match = {"Authorization": f"Bearer {create_key(store, 'match', actor='t')[1]}"}
        admin = {"Authorization": f"Bearer {create_key(store, 'admin', actor='t')[1]}"}
        store.close()
        folders = list((home / "metrics").iterdir())
        assert len(folders) == 1  # a fresh multiprocess folder under the data dir
        for client in clients.values():
            client.headers.update(match)
            took_each = []
            for _ in range(10):  # kept alive: no ~40 ms wait for a delayed ACK (TCP_NODELAY)
                started = time.monotonic()
                assert client.get("/m/index/status").status_code == 200
                took_each.append(time.monotonic() - started)
            assert sorted(took_each)[5] < 0.03, took_each
        assert httpx.get(f"{base}/m/lookup?signal_type=pdq&signal=00").status_code == 401
        value = "f" * 64
        params = {"signal_type": "pdq", "signal": value}
        for client in clients.values():
            assert client.get("/m/lookup", params=params).json() == {}
        made = httpx.post(f"{base}/c/banks", json={"name": "B"}, headers=curate)
        assert made.status_code == 201, made.text
        added = httpx.post(f"{base}/c/bank/B/signal", json={"pdq": value}, headers=curate)
        assert added.status_code == 200, added.text
        started = time.monotonic()
        took: dict[str, float] = {}
        while len(took) < len(clients) and time.monotonic() - started < 5:
            for worker, client in clients.items():
                if worker not in took and list(client.get("/m/lookup", params=params).json()):
                    took[worker] = time.monotonic() - started
            time.sleep(0.01)
        assert sorted(took) == sorted(clients), took  # both workers matched it
        assert max(took.values()) < 1.0, took
        # Each worker's scrape counts both workers' requests.
        scrapes = [c.get("/metrics", headers=admin) for c in clients.values()]
        assert all(r.status_code == 200 for r in scrapes)
        assert scrapes[0].headers["content-type"].startswith("text/plain")
        counted = [
            _metric(r.text, "childguard_http_requests_total", route="/m/index/status")
            for r in scrapes
        ]
        assert counted == [20.0, 20.0], counted
        assert _metric(scrapes[0].text, "childguard_index_size", signal_type="pdq") >= 1
        assert "childguard_index_refresh_age_seconds" in scrapes[0].text
        assert next(iter(clients.values())).get("/metrics").status_code == 403  # match key
    finally:
        for client in clients.values():
            client.close()
        proc.terminate()
        proc.wait(timeout=20)
    assert not folders[0].exists()  # removed when the service stopped


def _metric(text: str, name: str, **labels: str) -> float:
    """The sum of a Prometheus metric's samples with these labels."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(
            f'{k}="{v}"' in line.split(" ")[0] for k, v in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_serve_refuses_bad_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked before uvicorn or any worker starts: exit code 2 and the variable at fault."""
    monkeypatch.setenv("CHILDGUARD_HOME", str(tmp_path))
    monkeypatch.setenv("CHILDGUARD_MAX_REQUEST_BYTES", "x")
    done = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert done.exit_code == 2
    assert "CHILDGUARD_MAX_REQUEST_BYTES='x' is not a whole number" in done.output
    assert not (tmp_path / "childguard.db").exists()
