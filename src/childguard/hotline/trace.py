# Owns the host trace of a reported URL: addresses, reverse DNS, ASN and country, abuse, CDN.
"""Where a reported URL is hosted. `Tracer` is the protocol (`trace(url, headers) -> dict`);
`HostTracer` is the default:

- the host's addresses (`resolve`, injectable; default `socket.getaddrinfo`) and their reverse
  DNS names (`reverse`, injectable; default `socket.gethostbyaddr`);
- the autonomous system (its name and network) and country of each address: by default from
  the offline database that the `geoip2fast` package ships (country and ASN, IPv4 and IPv6;
  nothing is fetched); from MaxMind-format files (GeoLite2 or DB-IP's free ASN and country
  files, read with `maxminddb`) when `geo_databases` names any; or from any `geo` callable a
  deployer plugs in;
- a CDN hint from the response's headers (`server`, `via`, `cf-ray`, `x-amz-cf-id`,
  `x-served-by`, `x-cache`, ...);
- the RDAP abuse contact of the first address, only when `rdap_base` is configured (an RDAP
  server's base URL, e.g. a regional registry's), fetched under the SSRF guard.

Nothing here fails a report: each part that cannot be found is left out and its error noted.
"""

from __future__ import annotations

import functools
import json
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from childguard.netguard.fetch import FetchRefused, fetch

Resolver = Callable[[str], list[str]]
Reverse = Callable[[str], str | None]
GeoLookup = Callable[[str], dict[str, Any]]

# Response headers that name a CDN or cache in front of the origin: (header, value hint, CDN).
CDN_HEADERS: tuple[tuple[str, str, str], ...] = (
    ("cf-ray", "", "Cloudflare"),
    ("server", "cloudflare", "Cloudflare"),
    ("x-amz-cf-id", "", "Amazon CloudFront"),
    ("via", "cloudfront", "Amazon CloudFront"),
    ("x-served-by", "cache-", "Fastly"),
    ("x-fastly-request-id", "", "Fastly"),
    ("server", "akamai", "Akamai"),
    ("x-akamai-transformed", "", "Akamai"),
    ("x-azure-ref", "", "Azure Front Door"),
    ("x-goog-generation", "", "Google Cloud"),
    ("server", "bunnycdn", "BunnyCDN"),
    ("x-cdn", "", "CDN"),
)
MAX_RDAP_BYTES = 512 * 1024


class Tracer(Protocol):
    def trace(self, url: str, headers: Mapping[str, str]) -> dict[str, Any]: ...


def system_resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def system_reverse(address: str) -> str | None:
    try:
        return socket.gethostbyaddr(address)[0]
    except OSError:
        return None


def cdn_hint(headers: Mapping[str, str]) -> str | None:
    """The CDN or cache the response headers name, or None."""
    lower = {k.lower(): str(v).lower() for k, v in headers.items()}
    for header, hint, name in CDN_HEADERS:
        value = lower.get(header)
        if value is not None and hint in value:
            return name
    return None


@functools.cache
def _shipped_database() -> Any:
    from geoip2fast import GeoIP2Fast

    return GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn.dat.gz", verbose=False)


def offline_lookup(address: str) -> dict[str, Any]:
    """Country and autonomous system of `address` from the database `geoip2fast` ships (read
    once per process); nothing for private, loopback or unknown addresses."""
    found = _shipped_database().lookup(address)
    if getattr(found, "is_private", False):
        return {}
    out: dict[str, Any] = {}
    country = getattr(found, "country_code", "") or ""
    if len(country) == 2 and country.isalpha():
        out["country"] = country
    if getattr(found, "asn_name", ""):
        out["as_org"] = found.asn_name
        out["as_network"] = getattr(found, "asn_cidr", None) or None
    return out


def maxmind_lookup(paths: Sequence[Path]) -> GeoLookup:
    """A lookup over MaxMind-format files (ASN and/or country databases)."""
    import maxminddb

    readers = [maxminddb.open_database(str(p)) for p in paths]

    def lookup(address: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for reader in readers:
            found = reader.get(address)
            if not isinstance(found, dict):
                continue
            if "autonomous_system_number" in found:
                out["asn"] = found["autonomous_system_number"]
                out["as_org"] = found.get("autonomous_system_organization")
            country = found.get("country") or found.get("registered_country")
            if isinstance(country, dict) and country.get("iso_code"):
                out["country"] = country["iso_code"]
        return out

    return lookup


def abuse_contact(rdap: Mapping[str, Any]) -> dict[str, Any] | None:
    """The first `abuse` entity's name and email in an RDAP answer (entities nest)."""
    stack = list(rdap.get("entities") or [])
    while stack:
        entity = stack.pop(0)
        if not isinstance(entity, dict):
            continue
        if "abuse" in (entity.get("roles") or []):
            contact: dict[str, Any] = {"handle": entity.get("handle")}
            vcard = entity.get("vcardArray")
            if isinstance(vcard, list) and len(vcard) > 1:
                for prop in vcard[1]:
                    if isinstance(prop, list) and len(prop) >= 4:
                        if prop[0] == "email":
                            contact["email"] = prop[3]
                        elif prop[0] == "fn":
                            contact["name"] = prop[3]
            return contact
        stack.extend(entity.get("entities") or [])
    return None


@dataclass
class HostTracer:
    """The default tracer (see the module doc)."""

    resolve: Resolver = system_resolve
    reverse: Reverse = system_reverse
    geo: GeoLookup | None = None
    geo_databases: Sequence[Path] = ()
    rdap_base: str | None = None
    allow_private: bool = False
    timeout: float = 10.0
    _geo: GeoLookup | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._geo = self.geo
        if self._geo is None:
            self._geo = maxmind_lookup(self.geo_databases) if self.geo_databases else offline_lookup

    def trace(self, url: str, headers: Mapping[str, str]) -> dict[str, Any]:
        host = (urlsplit(url).hostname or "").lower()
        out: dict[str, Any] = {"host": host, "addresses": [], "errors": []}
        try:
            addresses = self.resolve(host)
        except OSError as exc:
            addresses = []
            out["errors"].append(f"resolve: {exc}")
        for address in addresses:
            entry: dict[str, Any] = {"ip": address, "reverse": self.reverse(address)}
            if self._geo is not None:
                try:
                    entry.update(self._geo(address))
                except Exception as exc:  # a broken database file must not fail a report
                    out["errors"].append(f"geo {address}: {exc}")
            out["addresses"].append(entry)
        first = out["addresses"][0] if out["addresses"] else {}
        out["country"] = first.get("country")
        out["asn"] = first.get("asn")
        out["as_org"] = first.get("as_org")
        out["cdn"] = cdn_hint(headers)
        out["abuse"] = None
        if self.rdap_base and first:
            out["abuse"] = self._rdap_abuse(first["ip"], out["errors"])
        if not out["errors"]:
            del out["errors"]
        return out

    def _rdap_abuse(self, address: str, errors: list[str]) -> dict[str, Any] | None:
        base = (self.rdap_base or "").rstrip("/")
        try:
            answer = fetch(
                f"{base}/ip/{quote(address)}",
                max_bytes=MAX_RDAP_BYTES,
                timeout=self.timeout,
                allow_private=self.allow_private,
            )
            return abuse_contact(json.loads(answer.data))
        except (FetchRefused, ValueError) as exc:
            errors.append(f"rdap: {exc}")
            return None
