"""Fixtures for alert tests (servers defined in alert_servers)."""

from collections.abc import Iterator

import pytest
from alert_servers import smtp_server, webhook_receiver

from childguard import log

__all__ = ["smtp_server", "webhook_receiver"]


@pytest.fixture(autouse=True)
def _log_to_the_current_stderr() -> Iterator[None]:
    # CLI tests elsewhere (CliRunner) leave structlog bound to a closed stream; rebind it.
    log.configure(level="WARNING", json=True)
    yield
