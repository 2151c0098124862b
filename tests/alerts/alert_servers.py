"""Real local servers for alert tests: an aiosmtpd SMTP server and a webhook receiver (fixtures)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message

from local_http import serving


@dataclass
class SmtpInbox:
    host: str
    port: int
    messages: list[Any] = field(default_factory=list)


class _Collect(Message):
    def __init__(self, inbox: SmtpInbox) -> None:
        super().__init__()
        self.inbox = inbox

    def handle_message(self, message: Any) -> None:
        self.inbox.messages.append(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpInbox]:
    inbox = SmtpInbox("127.0.0.1", _free_port())
    controller = Controller(_Collect(inbox), hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@dataclass
class WebhookReceiver:
    url: str
    fail_first: int = 0  # answer 503 to this many requests first
    slow_first: int = 0  # then stall this many requests past the client's timeout
    stall_s: float = 1.5
    status_after: int = 200
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def payloads(self) -> list[Any]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.requests.append((dict(self.headers.items()), body))
                n = len(receiver.requests)
            if n <= receiver.fail_first:
                status = 503
            elif n <= receiver.fail_first + receiver.slow_first:
                time.sleep(receiver.stall_s)
                status = 503
            else:
                status = receiver.status_after
            try:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:
                pass  # the client gave up (timeout)

        def log_message(self, *args: Any) -> None:
            pass

    with serving(Handler, "/hook") as receiver.url:
        yield receiver
