"""Flood control and limits over HTTP on the real server: a bank past its match cap is
quarantined and stops matching until released; rate limits per key and per client; the
request time limit (async and sync handlers, a client that sends its body too slowly); the
counters of all of it at /metrics."""

from __future__ import annotations

import re
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
from sqlalchemy import select

from childguard.store.models import AuditEvent
from local_http import serving

from .conftest import LiveServer, live_server

VALUE = "f" * 64


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _bank_with_entry(server: LiveServer, **fields: object) -> str:
    name = f"FLOOD_{uuid.uuid4().hex[:8].upper()}"
    with server.client("curate") as curate:
        made = curate.post("/v1/banks", json={"name": name, **fields})
        assert made.status_code == 201, made.text
        added = curate.post(
            f"/v1/banks/{name}/entries", json={"entries": [{"signal_type": "pdq", "value": VALUE}]}
        )
        assert added.json()["added"] == 1
    return name


def _matched(client: httpx.Client, route: str, bank: str) -> bool:
    """Whether one lookup through `route` answers a match in `bank`."""
    if route == "/v1/match":
        answer = client.get(route, params={"signal_type": "pdq", "value": VALUE})
        assert answer.status_code == 200, answer.text
        return any(m["bank_name"] == bank for m in answer.json()["matches"])
    answer = client.get(route, params={"signal_type": "pdq", "signal": VALUE})
    assert answer.status_code == 200, answer.text
    if route == "/m/raw_lookup":
        return bool(answer.json()["matches"])
    return bank in answer.json()


def test_a_bank_past_its_match_cap_is_quarantined_until_released(server: LiveServer) -> None:
    bank = _bank_with_entry(server, match_cap_per_minute=5)
    match = server.client("match")
    curate = server.client("curate")
    # Six matches in a minute through every matching route: the sixth passes the cap.
    routes = ["/v1/match", "/m/lookup", "/m/raw_lookup"] * 2
    assert [_matched(match, r, bank) for r in routes] == [True] * 6
    shown = curate.get(f"/v1/banks/{bank}").json()
    assert shown["match_cap_per_minute"] == 5
    assert shown["quarantined_at"] is not None
    assert "more than 5 matches in a minute" in shown["quarantine_reason"]
    # Quarantined: no route matches it, on this process at once.
    assert [_matched(match, r, bank) for r in routes[:3]] == [False] * 3
    with server.store.session() as session:
        actions = session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor == "service:flood-control")
        ).all()
    assert actions == ["bank.quarantine"]
    metrics = server.client("admin").get("/metrics").text
    assert _sample(metrics, "childguard_bank_quarantines_total", bank=bank) == 1
    assert _sample(metrics, "childguard_matches_total", bank=bank, signal_type="pdq") == 6
    assert _sample(metrics, "childguard_banks_quarantined") == 1
    # A curator releases it: it matches again, from an empty minute.
    released = curate.patch(f"/v1/banks/{bank}", json={"quarantined": False})
    assert released.status_code == 200, released.text
    assert released.json()["quarantined_at"] is None
    assert [_matched(match, "/v1/match", bank) for _ in range(5)] == [True] * 5
    assert curate.get(f"/v1/banks/{bank}").json()["quarantined_at"] is None
    # No cap (0) never quarantines; the cap is editable through PATCH.
    assert (
        curate.patch(f"/v1/banks/{bank}", json={"match_cap_per_minute": 0}).json()[
            "match_cap_per_minute"
        ]
        == 0
    )
    assert all(_matched(match, "/m/lookup", bank) for _ in range(8))
    assert curate.get(f"/v1/banks/{bank}").json()["quarantined_at"] is None
    bad = curate.patch(f"/v1/banks/{bank}", json={"match_cap_per_minute": -1})
    assert bad.status_code == 422, bad.text


def test_the_service_default_cap_applies_to_banks_without_their_own(tmp_path: Path) -> None:
    with live_server(
        f"sqlite:///{tmp_path / 's.db'}", tmp_path / "index", bank_match_cap_per_minute=2
    ) as server:
        bank = _bank_with_entry(server)
        other = _bank_with_entry(server, match_cap_per_minute=0)
        with server.client("match") as match:
            answers = [
                match.post("/v1/match", json={"hashes": [{"signal_type": "pdq", "value": VALUE}]})
                for _ in range(4)
            ]
        banks = [sorted(m["bank_name"] for m in a.json()["results"][0]["matches"]) for a in answers]
        assert banks[:3] == [sorted([bank, other])] * 3  # the third answer takes it past 2
        assert banks[3] == [other]


@contextmanager
def _slow_media(delay: float) -> Iterator[str]:
    """A local HTTP server whose answers take `delay` seconds."""

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            try:
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"abc")
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    with serving(Slow, "/photo.jpg") as url:
        yield url


def test_a_request_past_the_time_limit_is_answered_503(tmp_path: Path) -> None:
    with (
        live_server(
            f"sqlite:///{tmp_path / 's.db'}",
            tmp_path / "index",
            request_timeout_seconds=1,
            allow_private_fetch=True,
        ) as server,
        _slow_media(4) as url,
    ):
        match = server.client("match")
        # An async route (/v1/match awaits the fetch in a thread): a problem detail.
        started = time.monotonic()
        answer = match.post("/v1/match", params={"url": url})
        assert time.monotonic() - started < 3
        assert answer.status_code == 503, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith(":problem/timeout")
        # A sync route (GET /m/lookup runs in the thread pool): answered at the limit too.
        started = time.monotonic()
        answer = match.get("/m/lookup", params={"url": url})
        assert time.monotonic() - started < 3
        assert answer.status_code == 503
        assert answer.json() == {"message": "the request was not answered within 1 s"}
        # The server is not held by the abandoned handlers.
        assert match.get("/m/index/status").status_code == 200
        # The scrape runs under the same 1 s limit; on a loaded machine the admin key's first
        # use (a store write) can pass it, and each such 503 is one more timeout counted.
        admin, late = server.client("admin"), 0
        while (scrape := admin.get("/metrics")).status_code == 503 and late < 3:
            late += 1
        assert scrape.status_code == 200, scrape.text
        assert _sample(scrape.text, "childguard_request_timeouts_total") >= 2 + late


def test_a_client_sending_its_body_too_slowly_does_not_hold_the_server(tmp_path: Path) -> None:
    with live_server(
        f"sqlite:///{tmp_path / 's.db'}", tmp_path / "index", request_timeout_seconds=1
    ) as server:
        port = int(server.url.rsplit(":", 1)[1])
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        try:
            slow.sendall(
                b"POST /v1/match HTTP/1.1\r\nHost: test\r\n"
                + f"Authorization: Bearer {server.keys['match']}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
                + b'{"hashes": ['
            )
            started = time.monotonic()
            with server.client("match") as other:
                for _ in range(5):  # others are answered while it dawdles
                    assert other.get("/m/index/status").status_code == 200
            assert time.monotonic() - started < 1
            head = slow.recv(65536)
            waited = time.monotonic() - started
            assert head.startswith(b"HTTP/1.1 503"), head
            assert 0.5 < waited < 5, waited
        finally:
            slow.close()


def test_rate_limits_per_key_and_per_client(tmp_path: Path) -> None:
    with live_server(
        f"sqlite:///{tmp_path / 's.db'}",
        tmp_path / "index",
        rate_limit_per_key="3/minute",
        rate_limit_per_client="2/minute",
        allow_anonymous_hma=True,
    ) as server:
        match = server.client("match")
        curate = server.client("curate")
        assert [match.get("/m/index/status").status_code for _ in range(3)] == [200] * 3
        refused = match.get("/m/index/status")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "3 per 1 minute" in refused.json()["message"]
        v1 = match.get("/v1/match", params={"signal_type": "pdq", "value": VALUE})
        assert v1.status_code == 429
        assert v1.headers["content-type"] == "application/problem+json"
        assert v1.json()["type"].endswith(":problem/rate-limited")
        assert v1.json()["status"] == 429
        assert int(v1.headers["retry-after"]) >= 1
        # Another key has its own allowance; health checks are never limited.
        assert curate.get("/v1/banks").status_code == 200
        assert all(match.get("/status").status_code == 200 for _ in range(5))
        assert all(match.get("/status/live").status_code == 200 for _ in range(5))
        # Callers with no key are limited per client address.
        with httpx.Client(base_url=server.url) as anonymous:
            statuses = [anonymous.get("/m/index/status").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        metrics = server.client("admin").get("/metrics").text
        assert _sample(metrics, "childguard_rate_limited_total", limit="key") >= 2
        assert _sample(metrics, "childguard_rate_limited_total", limit="client") >= 1
