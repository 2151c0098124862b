"""The real service on a free 127.0.0.1 port (uvicorn in a thread), called over HTTP with
httpx; keys of every role made through `childguard.accounts`."""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from argon2 import Parameters, Type
from fastapi import FastAPI

from childguard.accounts import ROLES, create_key, create_user
from childguard.accounts.passwords import use_parameters
from childguard.service import Settings, create_app
from childguard.store import Store, open_store

# argon2id as in production, at a cost a test machine can afford many times a second.
TEST_ARGON2 = Parameters(
    type=Type.ID, version=19, salt_len=16, hash_len=32, time_cost=1, memory_cost=1024, parallelism=1
)


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    use_parameters(TEST_ARGON2)
    yield
    use_parameters(None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A running service: its base URL, its store (for setting up data) and a key per role."""

    url: str
    store: Store
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[role]}"} if role else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def user_client(self, *roles: str, csrf: bool = True, **kwargs: Any) -> httpx.Client:
        """An open client (close it, e.g. with `contextlib.closing`) signed in (POST
        /v1/session) as a new user holding `roles`; it sends the session cookie, and the CSRF
        token in `X-CSRF-Token` unless `csrf` is False."""
        username = f"user-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        create_user(self.store, username, password, actor="test", roles=roles)
        client = httpx.Client(base_url=self.url, timeout=30, **kwargs)
        answer = client.post("/v1/session", json={"username": username, "password": password})
        answer.raise_for_status()
        if csrf:
            client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        return client


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free port in a thread; yields its base URL once it
    answers `/status/live`."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, "/status/live", thread)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def _wait(url: str, path: str, thread: threading.Thread) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the service did not answer {path}")
        time.sleep(0.02)


@contextmanager
def live_server(db_url: str, index_dir: Path, **settings: Any) -> Iterator[LiveServer]:
    """Start the app under uvicorn, wait until `/status` is ready, stop it afterwards."""
    store = open_store(db_url)  # migrated before the server starts, so only one migrates
    settings.setdefault("data_dir", index_dir.parent)  # the secret key, job uploads
    config = Settings(db_url=db_url, index_dir=index_dir, **settings)
    try:
        with running(create_app(config)) as url:
            deadline = time.monotonic() + 30
            while httpx.get(f"{url}/status", timeout=2).status_code != 200:
                if time.monotonic() > deadline:
                    raise RuntimeError("the index did not load")
                time.sleep(0.02)
            keys = {role: create_key(store, role, actor="test")[1] for role in ROLES}
            yield LiveServer(url=url, store=store, keys=keys)
    finally:
        store.close()


@pytest.fixture
def server(store_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The service on an empty store, on SQLite and on PostgreSQL."""
    with live_server(store_url, tmp_path / "index") as running:
        yield running


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One service on SQLite for a whole module (the role matrix, limits)."""
    base = tmp_path_factory.mktemp("service")
    with live_server(
        f"sqlite:///{base / 'store.db'}", base / "index", max_request_bytes=256 * 1024
    ) as running:
        yield running
