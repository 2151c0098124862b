"""A watch: what the crawler looks at and how politely.

A watch names seed URLs, the domains the crawl may stay within, depth and page
limits, a re-check schedule, an optional site profile per domain (CSS selectors
for a page's view counter and comment count), the robots.txt policy (obeyed
unless the watch says otherwise *and* gives a reason, which is recorded with
every run) and an optional HTTP(S) proxy. Watches are plain data: they round-trip
through JSON so the store, the CLI and the crawl subprocess share one shape.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from childguard.errors import InputFormatError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float) -> int:
    """'90', '15m', '6h', '1d', '2w' -> seconds. Raises InputFormatError on anything else."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        m = _DURATION.match(value)
        if not m:
            raise InputFormatError(f"not a duration: {value!r} (use e.g. 90, 15m, 6h, 1d, 2w)")
        seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
    if seconds < 0:
        raise InputFormatError(f"a duration cannot be negative: {value!r}")
    return int(seconds)


@dataclass(frozen=True)
class SiteProfile:
    """CSS selectors that read counters off one site's pages.

    `views` and `comments` select the page-level counters. For album pages that
    show one counter per photo, `item` selects each photo block; inside it,
    `item_image` finds the photo (an `<img>` or a link) and `item_views` its counter.
    Selectors may end in `::text` or `::attr(name)`; numbers like "1,234", "16M"
    or "2.5k views" are understood.
    """

    views: str | None = None
    comments: str | None = None
    item: str | None = None
    item_image: str = "img"
    item_views: str | None = None


@dataclass(frozen=True)
class Watch:
    name: str
    seeds: tuple[str, ...]
    allowed_domains: tuple[str, ...] = ()
    max_depth: int = 3
    max_pages: int = 500
    max_images: int = 20_000
    recheck_every: int = 6 * 3600  # seconds
    obey_robots: bool = True
    robots_override_reason: str | None = None
    profiles: dict[str, SiteProfile] = field(default_factory=dict)
    proxy: str | None = None
    organisation: str | None = None
    # Politeness per domain.
    concurrency_per_domain: int = 4
    download_delay: float = 0.25
    # Loop guards: at most this many pages whose URLs share one shape (digits and query
    # values blanked), and no path with a segment repeated more than `max_segment_repeats`.
    max_pages_per_pattern: int = 1000
    max_segment_repeats: int = 3

    def __post_init__(self) -> None:
        if not self.name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", self.name):
            raise InputFormatError(
                f"watch name {self.name!r} must be 1-100 letters, digits, '.', '_' or '-'"
            )
        if not self.seeds:
            raise InputFormatError(f"watch {self.name!r} needs at least one seed URL")
        for seed in self.seeds:
            parts = urlsplit(seed)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InputFormatError(f"seed {seed!r} is not an http(s) URL with a host")
        for name, low in (
            ("max_depth", 0),
            ("max_pages", 1),
            ("max_images", 1),
            ("concurrency_per_domain", 1),
            ("max_pages_per_pattern", 1),
            ("max_segment_repeats", 1),
        ):
            if getattr(self, name) < low:
                raise InputFormatError(f"{name} must be at least {low}, got {getattr(self, name)}")
        if self.download_delay < 0:
            raise InputFormatError("download_delay cannot be negative")
        if not self.obey_robots and not (self.robots_override_reason or "").strip():
            raise InputFormatError(
                "ignoring robots.txt needs a reason (robots_override_reason); each run records it"
            )
        if self.proxy is not None:
            # A proxy passes the address policy like any URL: a spelling no proxy may have is
            # refused here; a loopback or private one is refused at run time unless the run
            # lifts the policy for it (`childguard.netguard.ssrf.proxy_refusal`).
            from childguard.netguard.ssrf import proxy_spelling_refusal  # loads Scrapy

            why = proxy_spelling_refusal(self.proxy)
            if why:
                raise InputFormatError(f"proxy {self.proxy!r}: {why}")

    @property
    def domains(self) -> tuple[str, ...]:
        """The allowed domains, defaulting to the seeds' hosts."""
        if self.allowed_domains:
            return tuple(d.lower().lstrip(".") for d in self.allowed_domains)
        return tuple(dict.fromkeys((urlsplit(s).hostname or "").lower() for s in self.seeds))

    def profile_for(self, host: str) -> SiteProfile | None:
        """The site profile for `host` (exact domain or any parent domain)."""
        host = host.lower()
        for domain, profile in self.profiles.items():
            d = domain.lower().lstrip(".")
            if host == d or host.endswith("." + d):
                return profile
        return None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seeds"] = list(self.seeds)
        data["allowed_domains"] = list(self.allowed_domains)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Watch:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InputFormatError(f"unknown watch field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        values["seeds"] = tuple(values.get("seeds") or ())
        values["allowed_domains"] = tuple(values.get("allowed_domains") or ())
        if "recheck_every" in values:
            values["recheck_every"] = parse_duration(values["recheck_every"])
        profiles = values.get("profiles") or {}
        try:
            values["profiles"] = {
                str(k): v if isinstance(v, SiteProfile) else SiteProfile(**v)
                for k, v in profiles.items()
            }
        except TypeError as exc:
            raise InputFormatError(f"bad site profile: {exc}") from exc
        try:
            return cls(**values)
        except TypeError as exc:
            raise InputFormatError(f"bad watch: {exc}") from exc

    @property
    def recheck_interval(self) -> timedelta:
        return timedelta(seconds=self.recheck_every)
