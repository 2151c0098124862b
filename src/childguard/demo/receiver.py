"""The demo organisation's webhook receiver: a local HTTP endpoint on 127.0.0.1 that checks each
delivery's HMAC signature (as a real receiver must) and keeps the verified JSON payloads."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from childguard.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


@dataclass
class WebhookReceiver:
    """Collects verified deliveries in `received`; counts refused ones in `rejected`."""

    secret: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/childguard-alerts"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = bool(receiver.secret) and verify_signature(
                    receiver.secret,
                    body,
                    self.headers.get(TIMESTAMP_HEADER, ""),
                    self.headers.get(SIGNATURE_HEADER, ""),
                )
                with receiver._lock:
                    if ok:
                        receiver.received.append(json.loads(body))
                    else:
                        receiver.rejected += 1
                self.send_response(204 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, name="demo-webhook", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return [p for p in self.received if p.get("type") == kind]
