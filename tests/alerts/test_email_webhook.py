"""Email against a real aiosmtpd server; webhooks against a real HTTP server that fails first."""

from __future__ import annotations

import time

import pytest
from alert_servers import SmtpInbox, WebhookReceiver

from childguard.alerts.email import AlertDeliveryError, SmtpSettings, build_message, send_email
from childguard.alerts.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    RetryPolicy,
    send_webhook,
    sign,
    verify_signature,
)

FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.05, timeout_s=0.5)


def test_email_reaches_a_real_smtp_server(smtp_server: SmtpInbox) -> None:
    settings = SmtpSettings(host=smtp_server.host, port=smtp_server.port, sender="cg@example.org")
    msg_id = send_email(settings, ["leader@scouts.example"], "Re-post found", "page: http://x/p1")
    assert len(smtp_server.messages) == 1
    got = smtp_server.messages[0]
    assert got["To"] == "leader@scouts.example"
    assert got["Subject"] == "Re-post found"
    assert got["Message-ID"] == msg_id
    assert "page: http://x/p1" in got.get_payload()


def test_email_to_a_closed_port_is_a_retryable_error() -> None:
    from alert_servers import _free_port

    settings = SmtpSettings(host="127.0.0.1", port=_free_port(), timeout_s=2)
    with pytest.raises(AlertDeliveryError) as err:
        send_email(settings, ["a@b.example"], "s", "b")
    assert err.value.retryable


def test_header_injection_is_refused() -> None:
    with pytest.raises(ValueError, match="newline"):
        build_message("a@b", ["c@d"], "hi\r\nBcc: evil@x", "body")


def test_webhook_is_signed_and_verifiable(webhook_receiver: WebhookReceiver) -> None:
    result = send_webhook(webhook_receiver.url, "s3cret", {"sighting": 7}, policy=FAST)
    assert result.status_code == 200 and result.attempts == 1
    headers, body = webhook_receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert webhook_receiver.payloads() == [{"sighting": 7}]
    ts, sig = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert verify_signature("s3cret", body, ts, sig)
    assert not verify_signature("wrong", body, ts, sig)
    assert not verify_signature("s3cret", body + b" ", ts, sig)
    # A replayed request, valid signature but old timestamp, is refused.
    assert not verify_signature("s3cret", body, ts, sig, now=time.time() + 3600)
    # The timestamp is covered by the signature.
    assert not verify_signature("s3cret", body, str(int(ts) + 1), sig)
    assert sig == sign("s3cret", int(ts), body)


def test_webhook_retries_5xx_with_backoff_and_keeps_delivery_id(
    webhook_receiver: WebhookReceiver,
) -> None:
    webhook_receiver.fail_first = 2
    waits: list[float] = []
    result = send_webhook(
        webhook_receiver.url, "k", {"a": 1}, policy=FAST, sleep=lambda s: waits.append(s)
    )
    assert result.attempts == 3 and len(webhook_receiver.requests) == 3
    assert waits == [0.01, 0.02]  # exponential
    ids = {h[DELIVERY_HEADER] for h, _ in webhook_receiver.requests}
    assert len(ids) == 1 and result.delivery_id in ids


def test_webhook_retries_timeouts(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.slow_first = 1
    webhook_receiver.stall_s = 1.5
    policy = RetryPolicy(attempts=3, base_delay_s=0.01, timeout_s=0.3)
    result = send_webhook(webhook_receiver.url, "k", {"a": 1}, policy=policy)
    assert result.attempts == 2


def test_webhook_gives_up_after_the_last_attempt(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail_first = 100
    with pytest.raises(AlertDeliveryError, match="after 4 attempts") as err:
        send_webhook(webhook_receiver.url, "k", {"a": 1}, policy=FAST)
    assert err.value.retryable and len(webhook_receiver.requests) == 4


def test_webhook_4xx_is_permanent(webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.status_after = 410
    with pytest.raises(AlertDeliveryError) as err:
        send_webhook(webhook_receiver.url, "k", {"a": 1}, policy=FAST)
    assert not err.value.retryable and len(webhook_receiver.requests) == 1


def test_webhook_refuses_bad_urls_and_missing_secret() -> None:
    with pytest.raises(ValueError, match="http"):
        send_webhook("file:///etc/passwd", "k", {})
    with pytest.raises(ValueError, match="secret"):
        send_webhook("http://127.0.0.1:9/", "", {})
