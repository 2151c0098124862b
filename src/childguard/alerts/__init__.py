"""Alerts to organisations: email (SMTP), signed webhooks, and the dispatcher that sends one
alert per new sighting (or a daily digest)."""
