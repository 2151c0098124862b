"""Signed JSON webhooks with retries.

Each delivery POSTs a JSON body with these headers:

- `X-Childguard-Timestamp`: Unix seconds when the delivery was signed;
- `X-Childguard-Signature`: `sha256=<hex>`, the HMAC-SHA256 with the organisation's secret over
  `"<timestamp>." + raw body` (the timestamp is signed so a captured request cannot be replayed
  later; receivers should reject timestamps older than a few minutes: `verify_signature`);
- `X-Childguard-Delivery`: an id that stays the same across retries, so receivers can dedupe.

Connection errors, timeouts, 429 and 5xx responses are retried with exponential backoff
(`RetryPolicy`); other 4xx responses fail at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from childguard.alerts.email import AlertDeliveryError
from childguard.log import get_logger

SIGNATURE_HEADER = "X-Childguard-Signature"
TIMESTAMP_HEADER = "X-Childguard-Timestamp"
DELIVERY_HEADER = "X-Childguard-Delivery"

log = get_logger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    timeout_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1)))


@dataclass(frozen=True)
class WebhookResult:
    delivery_id: str
    status_code: int
    attempts: int


def canonical_body(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: check the HMAC in constant time and the timestamp's age."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def validate_webhook_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"webhook URL must be http(s)://host/...: {url[:200]!r}")
    return url


def send_webhook(
    url: str,
    secret: str,
    payload: Mapping[str, Any],
    *,
    policy: RetryPolicy | None = None,
    delivery_id: str | None = None,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> WebhookResult:
    """POST `payload` signed with `secret`, retrying transient failures.

    Raises AlertDeliveryError when it gives up or the receiver refuses.
    """
    policy = policy or RetryPolicy()
    validate_webhook_url(url)
    if not secret:
        raise ValueError("a webhook needs a secret to sign with")
    body = canonical_body(payload)
    delivery = delivery_id or uuid.uuid4().hex
    own_client = client is None
    http = client or httpx.Client(timeout=policy.timeout_s, follow_redirects=False)
    last_error = ""
    try:
        for attempt in range(1, policy.attempts + 1):
            ts = int(time.time())
            headers = {
                "Content-Type": "application/json",
                TIMESTAMP_HEADER: str(ts),
                SIGNATURE_HEADER: sign(secret, ts, body),
                DELIVERY_HEADER: delivery,
                "User-Agent": "childguard-webhook/1",
            }
            try:
                resp = http.post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:  # timeouts, refused connections, protocol errors
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code < 300:
                    return WebhookResult(delivery, resp.status_code, attempt)
                last_error = f"HTTP {resp.status_code}"
                if resp.status_code < 500 and resp.status_code != 429:
                    raise AlertDeliveryError(
                        f"webhook {url} refused the alert: {last_error}", retryable=False
                    )
            log.warning("webhook_retry", url=url, attempt=attempt, error=last_error)
            if attempt < policy.attempts:
                sleep(policy.delay(attempt))
    finally:
        if own_client:
            http.close()
    raise AlertDeliveryError(
        f"webhook {url} failed after {policy.attempts} attempts: {last_error}", retryable=True
    )
