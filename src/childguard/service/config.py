# Owns the service's settings: read from the environment, validated before anything starts.
"""Service settings. Every value has an embedded default, so `childguard serve` runs with
none set; each `CHILDGUARD_*` variable overrides one and is checked with a message that says
what to fix:

| variable | default | meaning |
| --- | --- | --- |
| `CHILDGUARD_DB` | SQLite under the data dir | the store's URL, or a SQLite path |
| `CHILDGUARD_HOST` | `127.0.0.1` | address to listen on |
| `CHILDGUARD_PORT` | `8000` | port to listen on (1-65535) |
| `CHILDGUARD_ALLOW_ANONYMOUS_HMA` | `false` | HMA-compatible routes accept calls with no key |
| `CHILDGUARD_MAX_REQUEST_BYTES` | `33554432` (32 MiB) | largest request body accepted |
| `CHILDGUARD_INDEX_DIR` | the data dir's `index/` | where derived indexes are saved |
| `CHILDGUARD_REFRESH_SECONDS` | `0.5` | how often the matcher follows the store |
| `CHILDGUARD_ALLOW_PRIVATE` | `false` | fetch URLs on private addresses (tests, local demos) |
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from childguard import config
from childguard.errors import ChildguardError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ChildguardError):
    """A service setting is invalid; the message names the variable and what it accepts.
    `field` is the setting's name in `Settings`, where one setting is at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# The variable each setting is read from.
ENV_NAMES = {
    "db_url": "CHILDGUARD_DB",
    "host": "CHILDGUARD_HOST",
    "port": "CHILDGUARD_PORT",
    "allow_anonymous_hma": "CHILDGUARD_ALLOW_ANONYMOUS_HMA",
    "max_request_bytes": "CHILDGUARD_MAX_REQUEST_BYTES",
    "index_dir": "CHILDGUARD_INDEX_DIR",
    "refresh_seconds": "CHILDGUARD_REFRESH_SECONDS",
    "allow_private_fetch": "CHILDGUARD_ALLOW_PRIVATE",
}


@dataclass(frozen=True)
class Settings:
    """What the service runs with. Build it with `Settings.from_env()` or directly."""

    db_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    allow_anonymous_hma: bool = False
    max_request_bytes: int = 32 * 1024 * 1024
    index_dir: Path | None = None
    refresh_seconds: float = 0.5
    allow_private_fetch: bool = False

    def __post_init__(self) -> None:
        if not self.db_url:
            object.__setattr__(self, "db_url", config.database_url())
        _check_host(self.host, "host")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"port {self.port} is outside 1-65535", "port")
        if self.max_request_bytes < 1024:
            raise SettingsError(
                f"max_request_bytes {self.max_request_bytes} is under 1024; uploads need room",
                "max_request_bytes",
            )
        if not 0.05 <= self.refresh_seconds <= 60:
            raise SettingsError(
                f"refresh_seconds {self.refresh_seconds} is outside 0.05-60 seconds",
                "refresh_seconds",
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `CHILDGUARD_*` variables (default: os.environ), then `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get("CHILDGUARD_DB"):
            values["db_url"] = config.database_url(env["CHILDGUARD_DB"])
        if "CHILDGUARD_HOST" in env:
            values["host"] = env["CHILDGUARD_HOST"].strip()
        if "CHILDGUARD_PORT" in env:
            values["port"] = _int(env, "CHILDGUARD_PORT")
        if "CHILDGUARD_ALLOW_ANONYMOUS_HMA" in env:
            values["allow_anonymous_hma"] = _bool(env, "CHILDGUARD_ALLOW_ANONYMOUS_HMA")
        if "CHILDGUARD_MAX_REQUEST_BYTES" in env:
            values["max_request_bytes"] = _int(env, "CHILDGUARD_MAX_REQUEST_BYTES")
        if env.get("CHILDGUARD_INDEX_DIR"):
            values["index_dir"] = Path(env["CHILDGUARD_INDEX_DIR"]).expanduser()
        if "CHILDGUARD_REFRESH_SECONDS" in env:
            values["refresh_seconds"] = _float(env, "CHILDGUARD_REFRESH_SECONDS")
        if "CHILDGUARD_ALLOW_PRIVATE" in env:
            values["allow_private_fetch"] = _bool(env, "CHILDGUARD_ALLOW_PRIVATE")
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except SettingsError as exc:
            where = ENV_NAMES.get(exc.field or "")
            if exc.field in overrides or where is None or where not in env:
                raise SettingsError(f"invalid service settings: {exc}", exc.field) from None
            raise SettingsError(f"{where}: {exc}", exc.field) from None

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _check_host(host: str, what: str) -> None:
    if not host or any(c.isspace() for c in host):
        raise SettingsError(f"{what} {host!r} is not an address or host name", "host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not all(part.isalnum() or "-" in part for part in host.split(".")):
            raise SettingsError(f"{what} {host!r} is not an address or host name", "host") from None


def _int(env: Mapping[str, str], name: str) -> int:
    raw = env[name].strip()
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


def _float(env: Mapping[str, str], name: str) -> float:
    raw = env[name].strip()
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env[name].strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingsError(f"{name}={env[name]!r} is not a boolean; use true or false")


def check_environment() -> None:
    """Validate the settings the environment gives; SettingsError saying what to fix."""
    Settings.from_env()
