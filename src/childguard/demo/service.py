# Owns the demo's running service: `childguard serve`'s app under uvicorn on a free local port.
"""The real service for the demo and the benchmarks: `create_app(settings)` served by uvicorn
in a thread on a free 127.0.0.1 port, for the duration of a `with` block. `running_service`
yields the base URL once `/status` answers 200 (the matcher has loaded), and stops the server
(its scheduler and store with it) when the block ends."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx
import uvicorn

from childguard.errors import ChildguardError
from childguard.service import Settings, create_app

START_SECONDS = 60.0


class ServiceDidNotStart(ChildguardError):
    """The demo's service did not answer in time; the message says which check failed."""


@contextmanager
def patched_environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set these environment variables while the block runs, then put back what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, thread: threading.Thread, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for path in ("/status/live", "/status"):
        while True:
            try:
                if httpx.get(f"{url}{path}", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if not thread.is_alive():
                raise ServiceDidNotStart(f"the service at {url} stopped before {path} answered")
            if time.monotonic() > deadline:
                raise ServiceDidNotStart(f"the service at {url} did not answer {path} in time")
            time.sleep(0.02)


@contextmanager
def running_service(settings: Settings, *, timeout: float = START_SECONDS) -> Iterator[str]:
    """Serve the app on `settings` (host and port are replaced by 127.0.0.1 and a free port);
    yields the base URL once the service is ready."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings.with_overrides(host="127.0.0.1", port=port)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="demo-service", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, thread, timeout)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
