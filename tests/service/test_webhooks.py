"""Webhook subscriptions over HTTP against the real server on SQLite and PostgreSQL, with a
real receiver on 127.0.0.1: a match sends a signed event the receiver verifies with the
derived secret, filtered by banks; a receiver that answers 500 gets retries and the delivery
ends `failed`; private URLs are refused unless allowed; disable, delete."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
import pytest

from childguard.alerts.subscriptions import deliver_due, derive_secret
from childguard.alerts.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    verify_signature,
)
from childguard.service.secret_key import SecretKeyError, load_or_create
from childguard.store.base import utcnow
from local_http import serving

from .conftest import LiveServer, live_server

RNG = random.Random(1414)


@dataclass
class Receiver:
    """A webhook receiver: records each POST (headers, body) and answers `status`."""

    url: str = ""
    status: int = 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for _, b in self.requests]

    def wait(self, n: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.requests) < n:
            assert time.monotonic() < deadline, f"{len(self.requests)} of {n} requests came"
            time.sleep(0.02)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with got.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                got.requests.append(({**headers, ":path": self.path}, body))
            self.send_response(got.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler, "/hook") as got.url:
        yield got


@pytest.fixture
def service(store_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The service, allowed to post to 127.0.0.1, sending deliveries every 50 ms."""
    with live_server(
        store_url, tmp_path / "index", allow_private_fetch=True, webhook_poll_seconds=0.05
    ) as running:
        yield running


def pdq() -> str:
    return f"{RNG.getrandbits(256):064x}"


def bank_with(client: httpx.Client, name: str, values: list[str]) -> None:
    assert client.post("/v1/banks", json={"name": name}).status_code == 201
    entries = [
        {
            "signal_type": "pdq",
            "value": v,
            "classification_scheme": "ncmec",
            "classification_label": "A1",
            "source": "list-9",
        }
        for v in values
    ]
    answer = client.post(f"/v1/banks/{name}/entries", json={"entries": entries})
    assert answer.status_code == 200, answer.text


def subscribe(client: httpx.Client, url: str, **fields: Any) -> dict[str, Any]:
    answer = client.post("/v1/webhooks", json={"url": url, **fields})
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    assert answer.headers["location"] == f"/v1/webhooks/{body['webhook']['id']}"
    return body


def test_a_match_sends_a_signed_event_the_receiver_verifies(
    service: LiveServer, receiver: Receiver, tmp_path: Path
) -> None:
    wanted, other = pdq(), pdq()
    with service.client("curate") as curate, service.client("match") as match:
        bank_with(curate, "ALPHA", [wanted])
        bank_with(curate, "BETA", [other])
        made = subscribe(curate, receiver.url, description="analysts")
        only_beta = subscribe(curate, receiver.url + "?beta", banks=["BETA"])
        key = (tmp_path / "secret.key").read_bytes()
        assert made["secret"] == derive_secret(key, made["webhook"]["id"])
        assert "secret" not in curate.get(f"/v1/webhooks/{made['webhook']['id']}").text
        # one query with no match, then one that matches ALPHA
        miss = match.get("/v1/match", params={"signal_type": "pdq", "value": pdq()})
        assert miss.json()["matches"] == []
        hit = match.get("/v1/match", params={"signal_type": "pdq", "value": wanted})
        assert [m["bank_name"] for m in hit.json()["matches"]] == ["ALPHA"]
        receiver.wait(1)
        time.sleep(0.3)  # nothing else comes: not for the miss, not for the BETA-only one
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert verify_signature(
            made["secret"],
            body,
            headers[TIMESTAMP_HEADER.lower()],
            headers[SIGNATURE_HEADER.lower()],
        )
        assert not verify_signature(
            only_beta["secret"],
            body,
            headers[TIMESTAMP_HEADER.lower()],
            headers[SIGNATURE_HEADER.lower()],
        )
        event = json.loads(body)
        assert headers[DELIVERY_HEADER.lower()] == event["id"]
        assert event["event"] == "match"
        assert event["query"] == [{"signal_type": "pdq", "value": wanted}]
        [found] = event["matches"]
        assert found["bank"] == "ALPHA" and found["distance"] == 0
        assert found["classification"] == "ncmec:A1"
        assert found["provenance"]["source"] == "list-9"
        assert isinstance(found["entry_id"], int)
        # an HMA lookup of BETA's hash reaches both subscriptions
        hma = match.get("/m/lookup", params={"signal_type": "pdq", "signal": other})
        assert list(hma.json()) == ["BETA"]
        receiver.wait(3)
        later = receiver.requests[1:]
        assert sorted(h[":path"] for h, _ in later) == ["/hook", "/hook?beta"]
        assert [[m["bank"] for m in json.loads(b)["matches"]] for _, b in later] == [["BETA"]] * 2
        shown = curate.get(f"/v1/webhooks/{made['webhook']['id']}").json()["webhook"]
        assert [d["status"] for d in shown["deliveries"]] == ["sent", "sent"]
        assert all(d["last_status"] == 200 and d["attempts"] == 1 for d in shown["deliveries"])


def test_a_failing_receiver_gets_retries_then_the_delivery_fails(
    store_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    receiver.status = 500
    wanted = pdq()
    with (
        live_server(
            store_url, tmp_path / "index", allow_private_fetch=True, scheduler_enabled=False
        ) as idle,
        idle.client("curate") as curate,
        idle.client("match") as match,
    ):
        bank_with(curate, "GAMMA", [wanted])
        made = subscribe(curate, receiver.url)
        sub_id = made["webhook"]["id"]
        match.post("/v1/match", json={"hashes": [{"signal_type": "pdq", "value": wanted}]})
        policy = RetryPolicy(attempts=3, base_delay_s=60, timeout_s=5)
        key = (tmp_path / "secret.key").read_bytes()

        def secret(i: int) -> str:
            return derive_secret(key, i)

        first = deliver_due(idle.store, secret, policy=policy)
        assert (len(first.retrying), first.failed) == (1, [])
        assert deliver_due(idle.store, secret, policy=policy).retrying == []  # not due yet
        later = utcnow() + timedelta(minutes=5)
        assert len(deliver_due(idle.store, secret, later, policy=policy).retrying) == 1
        final = deliver_due(idle.store, secret, later + timedelta(minutes=5), policy=policy)
        assert len(final.failed) == 1
        assert len(receiver.requests) == 3
        assert len({h[DELIVERY_HEADER.lower()] for h, _ in receiver.requests}) == 1  # one event
        [delivery] = curate.get(f"/v1/webhooks/{sub_id}").json()["webhook"]["deliveries"]
        assert delivery["status"] == "failed" and delivery["attempts"] == 3
        assert (delivery["last_status"], delivery["last_error"]) == (500, "HTTP 500")
        nothing = deliver_due(idle.store, secret, later + timedelta(hours=1), policy=policy)
        assert (nothing.sent, nothing.retrying, nothing.failed) == ([], [], [])


def test_subscriptions_are_checked_disabled_and_deleted(
    sqlite_server: LiveServer, receiver: Receiver
) -> None:
    with sqlite_server.client("curate") as curate, sqlite_server.client("match") as match:
        private = curate.post("/v1/webhooks", json={"url": receiver.url})
        assert private.status_code == 422  # this server keeps to the public internet
        assert "127.0.0.1" in private.json()["detail"]
        for bad in (
            {"url": "ftp://example.org/x"},
            {"url": "https://example.org", "events": ["x"]},
        ):
            assert curate.post("/v1/webhooks", json=bad).status_code == 422
        made = subscribe(curate, "https://93.184.215.14/hook", banks=["DELTA"])  # a public address
        sub_id = made["webhook"]["id"]
        listed = curate.get("/v1/webhooks").json()
        assert [w["id"] for w in listed["webhooks"]] == [sub_id]
        off = curate.patch(f"/v1/webhooks/{sub_id}", json={"enabled": False})
        assert off.json()["webhook"]["enabled"] is False
        every = curate.patch(f"/v1/webhooks/{sub_id}", json={"banks": None, "enabled": True})
        assert every.json()["webhook"]["banks"] is None and every.json()["webhook"]["enabled"]
        assert curate.delete(f"/v1/webhooks/{sub_id}").json() == {"deleted": sub_id}
        assert curate.get(f"/v1/webhooks/{sub_id}").status_code == 404
        assert curate.get("/v1/webhooks/abc").status_code == 404
        assert match.get("/v1/webhooks").status_code == 403


def test_the_secret_key_file_is_made_once_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secret.key"
    key = load_or_create(path)
    assert len(key) == 32 and load_or_create(path) == key
    assert path.stat().st_mode & 0o777 == 0o600
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match=f"{path}.*chmod 600"):
        load_or_create(path)
    path.chmod(0o600)
    path.write_bytes(b"short")
    with pytest.raises(SecretKeyError, match="5 bytes"):
        load_or_create(path)
