"""`childguard serve --config FILE` as a subprocess: its access log on stderr (route templates,
request ids, actors; no query strings, keys, bodies, nor reporters' addresses), metrics summed
over two workers, and a graceful SIGTERM (the request in flight completes, exit code 0)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from childguard.accounts import create_key
from childguard.matcher.bank_index import MANIFEST
from childguard.store import open_store

from .conftest import free_port

CLI = Path(sys.executable).with_name("childguard")
VALUE = "e" * 64


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    port: int
    home: Path
    stderr: Path
    keys: dict[str, str]

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines the service wrote on stderr so far."""
        out = []
        for line in self.stderr.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out


@contextmanager
def serve(tmp_path: Path, *extra: str, settings: str = "") -> Iterator[Served]:
    """`childguard serve --config` on a fresh SQLite store, keys of a few roles made first."""
    home = tmp_path / "home"
    port = free_port()
    db = tmp_path / "serve.db"
    config = tmp_path / "childguard.toml"
    config.write_text(
        f'db_url = "{db}"\nport = {port}\nindex_dir = "{tmp_path / "index"}"\n'
        f'log_level = "INFO"\n[limits]\nrequest_timeout_seconds = 20\n{settings}'
    )
    store = open_store(f"sqlite:///{db}")
    keys = {role: create_key(store, role, actor="test")[1] for role in ("match", "curate", "admin")}
    store.close()
    env = {**os.environ, "CHILDGUARD_HOME": str(home), "CHILDGUARD_ADMIN_PASSWORD": "x" * 20}
    for name in ("CHILDGUARD_DB", "CHILDGUARD_CONFIG", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [str(CLI), "serve", "--config", str(config), *extra],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                if httpx.get(f"{url}/status", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, stderr.read_text()
            time.sleep(0.1)
        yield Served(proc, url, port, home, stderr, keys)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def _requests(served: Served) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 5
    while True:
        lines = [e for e in served.log_lines() if e.get("event") == "http.request"]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_the_access_log_names_routes_and_callers_but_never_queries_or_reporters(
    tmp_path: Path,
) -> None:
    with serve(tmp_path) as served:
        match = {"Authorization": f"Bearer {served.keys['match']}", "User-Agent": "probe-agent/1"}
        with httpx.Client(base_url=served.url, headers=match) as client:
            found = client.get(
                "/m/lookup",
                params={"signal_type": "pdq", "signal": VALUE},
                headers={"X-Request-ID": "req-42"},
            )
            assert found.status_code == 200, found.text
            assert found.headers["x-request-id"] == "req-42"
            generated = client.get("/m/index/status").headers["x-request-id"]
            assert len(generated) == 32
            bad_id = client.get("/m/index/status", headers={"X-Request-ID": "no spaces allowed"})
            assert bad_id.headers["x-request-id"] != "no spaces allowed"
            curate = {"Authorization": f"Bearer {served.keys['curate']}"}
            missing = client.get("/v1/banks/NO_SUCH", headers=curate)
            assert missing.status_code == 404
            client.post("/v1/reports", json={"url": "https://example.org/x", "comment": "hi"})
            client.get("/report/abc", params={"token": "secret-token"})
            assert client.get("/m/lookup", headers={"Authorization": "Bearer cg_nope"}).is_error
        time.sleep(0.3)
        lines = _requests(served)
        text = served.stderr.read_text()
    by_id = {e["request_id"]: e for e in lines}
    lookup = by_id["req-42"]
    assert lookup["method"] == "GET" and lookup["route"] == "/m/lookup"
    assert lookup["status"] == 200 and lookup["bytes"] > 0 and lookup["duration_ms"] >= 0
    assert lookup["actor"].startswith("key:")
    assert lookup["client"] == "127.0.0.1" and lookup["user_agent"] == "probe-agent/1"
    assert by_id[generated]["route"] == "/m/index/status"
    bank = next(e for e in lines if e["status"] == 404 and e.get("route"))
    assert bank["route"] == "/v1/banks/{name}"
    reports = [
        e
        for e in lines
        if (e.get("route") or e.get("path", "")).startswith(("/v1/reports", "/report"))
    ]
    assert len(reports) == 2
    for entry in reports:
        assert "client" not in entry and "user_agent" not in entry
    refused = next(e for e in lines if e["status"] == 401)
    assert "actor" not in refused
    # Nothing of the queries, the bodies or the credentials anywhere in the output.
    for secret in (VALUE, "secret-token", "example.org", served.keys["match"], "cg_nope"):
        assert secret not in text


def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(tmp_path: Path) -> None:
    with serve(tmp_path, settings="timeout_graceful_shutdown = 15\n") as served:
        body = json.dumps({"hashes": [{"signal_type": "pdq", "value": VALUE}]}).encode()
        slow = socket.create_connection(("127.0.0.1", served.port), timeout=20)
        try:
            slow.sendall(
                b"POST /v1/match HTTP/1.1\r\nHost: test\r\n"
                + f"Authorization: Bearer {served.keys['match']}\r\n".encode()
                + b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.3)
            stopped_at = time.time()
            served.proc.send_signal(signal.SIGTERM)
            time.sleep(1.0)  # shutting down, and waiting for this request
            assert served.proc.poll() is None
            slow.sendall(body[10:])
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = slow.recv(65536)
                if not chunk:
                    break
                answer += chunk
        finally:
            slow.close()
        assert answer.startswith(b"HTTP/1.1 200"), answer
        result = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert result["results"][0]["query"]["value"] == VALUE
        assert served.proc.wait(timeout=30) == 0, served.stderr.read_text()
        with httpx.Client() as client:
            try:
                client.get(f"{served.url}/status/live", timeout=1)
                raise AssertionError("still listening after SIGTERM")
            except httpx.TransportError:
                pass
    # The matcher's indexes were saved on the way out.
    manifests = list((tmp_path / "index").rglob(MANIFEST))
    assert manifests and all(m.stat().st_mtime >= stopped_at for m in manifests), manifests
