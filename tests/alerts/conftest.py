"""Fixtures for alert tests (defined in alert_servers)."""

from alert_servers import smtp_server, webhook_receiver

__all__ = ["smtp_server", "webhook_receiver"]
