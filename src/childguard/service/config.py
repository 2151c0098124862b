# Owns the service's settings: defaults, the config file, the environment, and their checks.
"""Service settings. Every value has an embedded default, so `childguard serve` runs with
none set. A TOML file (`childguard serve --config FILE`, or `CHILDGUARD_CONFIG`) overrides the
defaults, a `CHILDGUARD_*` variable overrides the file, and `serve`'s options override both.
Everything is checked before anything listens, with a message naming the file and key (or the
variable) and what it accepts.

The file's keys are the setting names below, at the top level or grouped in tables of any name
(`[limits]`, `[server]`; the table name is only for the reader); a key that is not a setting,
a value of the wrong type or one out of range is an error. Paths in the file are taken as
given (relative ones from the working directory).

```toml
db_url = "postgresql+psycopg://childguard@db/childguard"
port = 8080
[limits]
rate_limit_per_key = "6000/minute"
request_timeout_seconds = 30
```

Each setting is read from `CHILDGUARD_<NAME>` (`CHILDGUARD_PORT`), but for those named in
`ENV_NAMES`: `db_url` (`CHILDGUARD_DB`), `allow_private_fetch` (`CHILDGUARD_ALLOW_PRIVATE`) and
`data_dir` (`CHILDGUARD_HOME`).

| setting | default | meaning |
| --- | --- | --- |
| `db_url` | SQLite under the data dir | the store's URL, or a SQLite path |
| `host` | `127.0.0.1` | address to listen on |
| `port` | `8000` | port to listen on (1-65535) |
| `workers` | `1` | worker processes (1-64) |
| `allow_anonymous_hma` | `false` | HMA-compatible routes accept calls with no key |
| `max_request_bytes` | `33554432` (32 MiB) | largest request body (from 1024) |
| `index_dir` | beside a SQLite store, else the data dir's `index/` | where indexes are saved |
| `refresh_seconds` | `0.5` | how often the matcher follows the store (0.05-60) |
| `allow_private_fetch` | `false` | fetch URLs on private addresses (tests, demos) |
| `log_level` | `INFO` | DEBUG, INFO, WARNING or ERROR; INFO shows the access log |
| `request_timeout_seconds` | `30` | a request not answered by then is 503 (0.1-3600) |
| `timeout_keep_alive` | `5` | seconds an idle keep-alive connection stays open (1-3600) |
| `limit_concurrency` | none | connections + tasks per worker past which uvicorn says 503 |
| `h11_max_incomplete_event_size` | `16384` | largest request head in bytes (1024-1048576) |
| `timeout_graceful_shutdown` | `10` | seconds in-flight requests get on SIGTERM (0-3600) |
| `timeout_worker_healthcheck` | `30` | seconds a worker may not answer before it is restarted |
| `rate_limit_per_key` | `6000/minute` | requests per API key per worker; empty: none |
| `rate_limit_per_client` | `600/minute` | requests with no key per client address per worker |
| `bank_match_cap_per_minute` | `10000` | a bank's matches a minute before quarantine (0: none) |
| `session_idle_seconds` | `3600` | a browser session unused this long ends (120 s-30 days) |
| `session_max_seconds` | `43200` | a browser session ends this long after sign-in |
| `secure_cookies` | `false` | mark the session cookie `Secure` (on behind HTTPS) |
| `login_max_failures` | `5` | failed sign-ins in a row that lock an account (1-1000) |
| `login_lockout_seconds` | `900` | how long a locked account stays locked (1-86400) |
| `data_dir` | the user's data directory | the secret key, job uploads |
| `secret_key_file` | `<data dir>/secret.key` | the service's secret key (made on first start) |
| `scheduler_enabled` | `true` | each worker runs jobs, webhook deliveries, alert rounds |
| `job_poll_seconds` | `1` | how often the scheduler looks for queued jobs |
| `webhook_poll_seconds` | `2` | how often it sends due webhook deliveries |
| `hotline_votes_required` | `2` | analysts who must agree before an assessment is final (1-10) |
| `hotline_daily_cap_minutes` | `120` | minutes of content on screen per analyst per day (1-1440) |
| `hotline_break_every_minutes` | `20` | minutes on screen between break reminders (0: none) |
| `hotline_pdq_threshold` | `31` | PDQ distance within which two photos are one item (0-128) |
| `hotline_vpdq_percent` | `80` | share of a video's frames that must match for one item (1-100) |
| `hotline_fetch_attempts` | `5` | fetches of a reported URL before it is given up (1-50) |
| `hotline_retention_pending_days` | `90` | evidence kept while an item waits for a decision |
| `hotline_retention_illegal_days` | `365` | evidence of `baseline` and `nationally-illegal` items |
| `hotline_retention_harvested_days` | `30` | evidence of `harvested` items |
| `hotline_retention_not_illegal_days` | `0` | evidence of `not-illegal` items (0: purged at once) |
| `hotline_preview_blur` | `8` | default preview blur, 0 (none) to 10; each analyst may set theirs |
| `hotline_preview_greyscale` | `true` | previews are greyscale unless an analyst turns it off |
| `hotline_home_country` | `BE` | the hotline's country (ISO alpha-2) until a supervisor sets it |
| `hotline_notifier_name` | `childguard hotline` | who notices and referrals say they are from |
| `hotline_notifier_email` | none | the From and Reply-To of notices; SMTP's sender when unset |
| `hotline_renotice_hours` | `24` | hours between notices of content still online (1-720) |
| `hotline_escalate_after` | `3` | notices sent before a notice is escalated (1-100) |
| `hotline_removal_check_hours` | `6` | hours between removal checks of a notified URL (0.01-720) |
| `hotline_verify_after_hours` | `24` | hours a removal must hold before it is verified (0-720) |
| `hotline_host_link_days` | `30` | days a host's notice link works (1-365) |
| `alert_poll_seconds` | `60` | seconds between alert rounds: queue, deliver, digests (1-86400) |
| `crawl_poll_seconds` | `60` | seconds between looks for due crawl watches (1-86400) |
| `album_poll_seconds` | `60` | seconds between looks for due album monitors (1-86400) |
| `crawl_timeout_seconds` | `3600` | a scheduled crawl still running after this fails (10-86400) |
| `crawl_hash_workers` | one per CPU | hashing processes per scheduled crawl (0: threads) |
| `crawl_private_hosts` | none | host names scheduled crawls may reach on private addresses |
| `crawl_static_hosts` | none | `host=address` pairs scheduled crawls resolve so (tests, demos) |
| `task_lease_seconds` | `120` | how long a node holds a scheduled task between renewals (5-3600) |
| `task_retry_seconds` | `30` | the first pause before a failed task reruns; it doubles (1-86400) |
| `task_retry_max_seconds` | `3600` | the longest pause before a failed task runs again |
| `scheduler_poll_seconds` | `5` | longest wait before a worker looks at the schedule (0.05-600) |

Rates are `N/second`, `N/minute`, `N/hour` or `N/day` (also `N per minute`, `N/5 minutes`).
`bank_match_cap_per_minute` applies to banks with no `match_cap_per_minute` of their own.

A setting added to `Settings` is read from the file and from `CHILDGUARD_<NAME>` with no
further code, for the types `str`, `int`, `float`, `bool`, `Path`, those or None, and
`tuple[str, ...]` (a TOML array, or a comma-separated variable).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import limits

from childguard import config
from childguard.errors import ChildguardError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_NONE = {"", "none"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
CONFIG_ENV = "CHILDGUARD_CONFIG"


class SettingsError(ChildguardError):
    """A service setting is invalid; the message names the variable and what it accepts.
    `field` is the setting's name in `Settings`, where one setting is at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# The variables of settings not read from `CHILDGUARD_<NAME>`.
ENV_NAMES = {
    "db_url": "CHILDGUARD_DB",
    "allow_private_fetch": "CHILDGUARD_ALLOW_PRIVATE",
    "data_dir": "CHILDGUARD_HOME",
}


# The retention settings, each with the outcomes whose evidence it keeps.
HOTLINE_RETENTION = {
    "hotline_retention_pending_days": ("pending", "undetermined"),
    "hotline_retention_illegal_days": ("baseline", "nationally-illegal"),
    "hotline_retention_harvested_days": ("harvested",),
    "hotline_retention_not_illegal_days": ("not-illegal",),
}


def env_name(field: str) -> str:
    """The variable a setting is read from."""
    return ENV_NAMES.get(field, f"CHILDGUARD_{field.upper()}")


@dataclass(frozen=True)
class Settings:
    """What the service runs with. Build it with `Settings.from_env()` or directly."""

    db_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    allow_anonymous_hma: bool = False
    max_request_bytes: int = 32 * 1024 * 1024
    index_dir: Path | None = None
    refresh_seconds: float = 0.5
    allow_private_fetch: bool = False
    log_level: str = "INFO"
    request_timeout_seconds: float = 30.0
    timeout_keep_alive: int = 5
    limit_concurrency: int | None = None
    h11_max_incomplete_event_size: int = 16 * 1024
    timeout_graceful_shutdown: float = 10.0
    timeout_worker_healthcheck: int = 30
    rate_limit_per_key: str = "6000/minute"
    rate_limit_per_client: str = "600/minute"
    bank_match_cap_per_minute: int = 10_000
    data_dir: Path | None = None
    secret_key_file: Path | None = None
    scheduler_enabled: bool = True
    job_poll_seconds: float = 1.0
    webhook_poll_seconds: float = 2.0
    session_idle_seconds: float = 3600.0
    session_max_seconds: float = 12 * 3600.0
    secure_cookies: bool = False
    login_max_failures: int = 5
    login_lockout_seconds: float = 900.0
    hotline_votes_required: int = 2
    hotline_daily_cap_minutes: int = 120
    hotline_break_every_minutes: int = 20
    hotline_pdq_threshold: int = 31
    hotline_vpdq_percent: float = 80.0
    hotline_fetch_attempts: int = 5
    hotline_retention_pending_days: int = 90
    hotline_retention_illegal_days: int = 365
    hotline_retention_harvested_days: int = 30
    hotline_retention_not_illegal_days: int = 0
    hotline_preview_blur: int = 8
    hotline_preview_greyscale: bool = True
    hotline_home_country: str = "BE"
    hotline_notifier_name: str = "childguard hotline"
    hotline_notifier_email: str | None = None
    hotline_renotice_hours: float = 24.0
    hotline_escalate_after: int = 3
    hotline_removal_check_hours: float = 6.0
    hotline_verify_after_hours: float = 24.0
    hotline_host_link_days: int = 30
    alert_poll_seconds: float = 60.0
    crawl_poll_seconds: float = 60.0
    album_poll_seconds: float = 60.0
    crawl_timeout_seconds: float = 3600.0
    crawl_hash_workers: int | None = None
    crawl_private_hosts: tuple[str, ...] = ()
    crawl_static_hosts: tuple[str, ...] = ()
    task_lease_seconds: float = 120.0
    task_retry_seconds: float = 30.0
    task_retry_max_seconds: float = 3600.0
    scheduler_poll_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.db_url:
            object.__setattr__(self, "db_url", config.database_url())
        _check_host(self.host, "host")
        if not 1 <= self.port <= 65535:
            raise SettingsError(f"port {self.port} is outside 1-65535", "port")
        _in_range(self, "workers", 1, 64, "")
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
        if self.log_level.upper() not in LOG_LEVELS:
            raise SettingsError(
                f"log_level {self.log_level!r} is not one of {', '.join(LOG_LEVELS)}", "log_level"
            )
        object.__setattr__(self, "log_level", self.log_level.upper())
        _in_range(self, "request_timeout_seconds", 0.1, 3600, "seconds")
        _in_range(self, "timeout_keep_alive", 1, 3600, "seconds")
        if self.limit_concurrency is not None:
            _in_range(self, "limit_concurrency", 1, 1_000_000, "")
        _in_range(self, "h11_max_incomplete_event_size", 1024, 1024 * 1024, "bytes")
        _in_range(self, "timeout_graceful_shutdown", 0, 3600, "seconds")
        _in_range(self, "timeout_worker_healthcheck", 1, 600, "seconds")
        for name in ("rate_limit_per_key", "rate_limit_per_client"):
            rate_limit(getattr(self, name), name)
        if self.bank_match_cap_per_minute < 0:
            raise SettingsError(
                f"bank_match_cap_per_minute {self.bank_match_cap_per_minute} is negative; "
                "0 means no cap",
                "bank_match_cap_per_minute",
            )
        _in_range(self, "job_poll_seconds", 0.05, 3600, "seconds")
        _in_range(self, "webhook_poll_seconds", 0.05, 3600, "seconds")
        _in_range(self, "session_idle_seconds", 120, 30 * 86400, "seconds")
        _in_range(self, "session_max_seconds", self.session_idle_seconds, 365 * 86400, "seconds")
        _in_range(self, "login_max_failures", 1, 1000, "")
        _in_range(self, "login_lockout_seconds", 1, 86400, "seconds")
        _in_range(self, "hotline_votes_required", 1, 10, "")
        _in_range(self, "hotline_daily_cap_minutes", 1, 1440, "minutes")
        _in_range(self, "hotline_break_every_minutes", 0, 1440, "minutes")
        _in_range(self, "hotline_pdq_threshold", 0, 128, "")
        _in_range(self, "hotline_vpdq_percent", 1, 100, "percent")
        _in_range(self, "hotline_fetch_attempts", 1, 50, "")
        _in_range(self, "hotline_preview_blur", 0, 10, "")
        for name in HOTLINE_RETENTION:
            _in_range(self, name, 0, 36500, "days")
        country = self.hotline_home_country
        if len(country) != 2 or not country.isascii() or not country.isalpha():
            raise SettingsError(
                f"hotline_home_country {country!r} is not an ISO 3166-1 alpha-2 code such as 'BE'",
                "hotline_home_country",
            )
        object.__setattr__(self, "hotline_home_country", country.upper())
        _in_range(self, "hotline_renotice_hours", 1, 720, "hours")
        _in_range(self, "hotline_escalate_after", 1, 100, "")
        _in_range(self, "hotline_removal_check_hours", 0.01, 720, "hours")
        _in_range(self, "hotline_verify_after_hours", 0, 720, "hours")
        _in_range(self, "hotline_host_link_days", 1, 365, "days")
        for name in ("alert_poll_seconds", "crawl_poll_seconds", "album_poll_seconds"):
            _in_range(self, name, 1, 86400, "seconds")
        _in_range(self, "crawl_timeout_seconds", 10, 86400, "seconds")
        if self.crawl_hash_workers is not None:
            _in_range(self, "crawl_hash_workers", 0, 256, "")
        for pair in self.crawl_static_hosts:
            host, sep, address = pair.partition("=")
            if not sep or not host.strip() or not address.strip():
                raise SettingsError(
                    f"crawl_static_hosts {pair!r} is not host=address (e.g. "
                    "'album.example.test=127.0.0.1')",
                    "crawl_static_hosts",
                )
        _in_range(self, "task_lease_seconds", 5, 3600, "seconds")
        _in_range(self, "task_retry_seconds", 1, 86400, "seconds")
        _in_range(self, "task_retry_max_seconds", self.task_retry_seconds, 7 * 86400, "seconds")
        _in_range(self, "scheduler_poll_seconds", 0.05, 600, "seconds")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        config_file: str | Path | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings from the defaults, then the TOML file (`config_file`, else the one
        `CHILDGUARD_CONFIG` names), then `CHILDGUARD_*` variables (default: os.environ), then
        `overrides` (None values are ignored)."""
        env = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
        source: dict[str, str] = {}
        values: dict[str, Any] = {}
        path = config_file if config_file is not None else env.get(CONFIG_ENV) or None
        if path is not None:
            for name, (key, value) in read_config_file(Path(path)).items():
                values[name] = value
                source[name] = f"{path}: {key}"
        for name, value in _from_environment(env).items():
            values[name] = value
            source[name] = env_name(name)
        for name, value in overrides.items():
            if value is not None:
                values[name] = value
                source.pop(name, None)
        try:
            return cls(**values)
        except SettingsError as exc:
            where = source.get(exc.field or "")
            if where is None:
                raise SettingsError(f"invalid service settings: {exc}", exc.field) from None
            raise SettingsError(f"{where}: {exc}", exc.field) from None

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# ---------------------------------------------------------------------- checks


def rate_limit(value: str, field: str) -> limits.RateLimitItem | None:
    """The parsed rate limit (`"600/minute"`); None for an empty one (no limit)."""
    if not value.strip():
        return None
    try:
        return limits.parse(value)
    except ValueError:
        raise SettingsError(
            f"{field} {value!r} is not a rate such as '600/minute' (per second, minute, hour "
            "or day), or empty for none",
            field,
        ) from None


def _in_range(settings: Settings, name: str, low: float, high: float, unit: str) -> None:
    value = getattr(settings, name)
    if not low <= value <= high:
        span = f"{_number(low)}-{_number(high)} {unit}".rstrip()
        raise SettingsError(f"{name} {_number(value)} is outside {span}", name)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _check_host(host: str, what: str) -> None:
    if not host or any(c.isspace() for c in host):
        raise SettingsError(f"{what} {host!r} is not an address or host name", "host")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not all(part.isalnum() or "-" in part for part in host.split(".")):
            raise SettingsError(f"{what} {host!r} is not an address or host name", "host") from None


# ---------------------------------------------------------------------- field types


def _field_types() -> dict[str, tuple[type, bool]]:
    """Each setting's base type and whether it may be None."""
    hints = typing.get_type_hints(Settings)
    out: dict[str, tuple[type, bool]] = {}
    for f in fields(Settings):
        hint = hints[f.name]
        optional = False
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            optional = len(args) < len(typing.get_args(hint))
            hint = args[0] if len(args) == 1 else hint
        if typing.get_origin(hint) in (tuple, list):
            hint = tuple
        out[f.name] = (hint, optional)
    return out


_WANT = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    Path: "a path (a string)",
    tuple: "a list of strings",
}


def _from_file_value(name: str, key: str, value: Any, where: Path) -> Any:
    base, _ = _field_types()[name]
    ok = {
        str: isinstance(value, str),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        bool: isinstance(value, bool),
        Path: isinstance(value, str) and bool(value),
        tuple: isinstance(value, list) and all(isinstance(v, str) for v in value),
    }.get(base)
    if ok is None:
        raise SettingsError(f"{where}: {key}: this setting cannot be set from a file", name)
    if not ok:
        raise SettingsError(f"{where}: {key}: want {_WANT[base]}, got {value!r}", name)
    if name == "db_url":
        return config.database_url(value)
    if base is Path:
        return Path(value).expanduser()
    if base is float:
        return float(value)
    if base is tuple:
        return tuple(value)
    return value


def read_config_file(path: Path) -> dict[str, tuple[str, Any]]:
    """The settings a TOML file sets: setting name -> (the key as written, the value).
    SettingsError naming the file and key for a file that cannot be read, a key that is not a
    setting, or a value of the wrong type."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the config file: {exc.strerror}") from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SettingsError(f"{path}: the config file is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    known = _field_types()
    found: dict[str, tuple[str, Any]] = {}

    def take(key: str, name: str, value: Any) -> None:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SettingsError(f"{path}: {key}: not a setting{hint}; see docs/api.md")
        if name in found:
            raise SettingsError(f"{path}: {key}: set twice (also as {found[name][0]})", name)
        found[name] = (key, _from_file_value(name, key, value, path))

    for key, value in document.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                if isinstance(item, dict):
                    raise SettingsError(f"{path}: {key}.{inner}: tables nest one level only")
                take(f"{key}.{inner}", inner, item)
        else:
            take(key, key, value)
    return found


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings `CHILDGUARD_*` variables set, each parsed by its setting's type."""
    out: dict[str, Any] = {}
    for name, (base, optional) in _field_types().items():
        var = env_name(name)
        if var not in env:
            continue
        raw = env[var].strip()
        if name == "db_url":
            if raw:
                out[name] = config.database_url(raw)
            continue
        if base is Path:
            if raw:
                out[name] = Path(raw).expanduser()
            continue
        if optional and raw.lower() in _NONE:
            out[name] = None
        elif base is bool:
            out[name] = _bool(env, var)
        elif base is int:
            out[name] = _int(env, var)
        elif base is float:
            out[name] = _float(env, var)
        elif base is tuple:
            out[name] = tuple(p.strip() for p in raw.split(",") if p.strip())
        elif base is str:
            out[name] = raw
        else:
            raise SettingsError(f"{var}: this setting cannot be set from the environment", name)
    return out


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


def check_environment(config_file: str | Path | None = None) -> Settings:
    """Validate the settings the file and the environment give; SettingsError saying what
    to fix."""
    return Settings.from_env(config_file=config_file)
