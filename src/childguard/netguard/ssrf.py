# Owns the address policy for every outbound fetch, and its Scrapy resolver and middleware.
"""SSRF protection: childguard (the crawler, the service, the hotline) never connects to
private, loopback, link-local, multicast, reserved, CGNAT or cloud-metadata addresses (IPv4
and IPv6, including IPv4-mapped, 6to4 and NAT64 forms).

Two layers, so that redirects and DNS answers that change are covered:

1. `GuardedHostnameResolver` is installed as Scrapy's `TWISTED_DNS_RESOLVER`.
   Twisted's `HostnameEndpoint` asks it for addresses on *every* connection,
   for host names and IP literals alike, and it drops every address the policy
   refuses, so the socket can only ever be opened to an allowed address. A DNS
   answer that changes between requests (rebinding) is filtered again each time.
2. `SsrfGuardMiddleware` (a downloader middleware) refuses non-http(s) schemes,
   IP literals in any spelling (`127.1`, `0x7f.1`, `2130706433`, `[::ffff:7f00:1]`)
   and `localhost` names before a request is queued, re-checks every redirected
   request (redirects are new requests that pass through it again), and refuses a
   response whose peer address (`response.ip_address`) the policy forbids.

Through a proxy the proxy resolves the target, so the proxy itself passes the same policy
as any URL: its spelling, and every address its host resolves to (static hosts first), are
checked before the first request goes through it (`proxy_refusal`), and a proxied response's
peer (the proxy's address as connected) gets the same peer check as any response. The URL
checks of layer 2 still apply to every proxied request.
The only way around the policy is the explicit `CHILDGUARD_ALLOW_PRIVATE` setting
(`allow_private=True` in `run_crawl`), meant for tests and the demo on 127.0.0.1, or
its narrower form `CHILDGUARD_ALLOW_PRIVATE_HOSTS` that exempts named endpoints only: an
entry `host:port` exempts exactly that host and port (a proxy too); a bare `host` exempts
that host at the ports the crawl's seed URLs name for it (80/443 where none do), never its
other ports. Redirects *from* an exempt host to any other private address are still refused.
`CHILDGUARD_STATIC_HOSTS` maps names to addresses (like curl's `--resolve`); its
answers pass the same policy.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingHostnameResolver
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import (
    IAddress,
    IHostnameResolver,
    IHostResolution,
    IResolutionReceiver,
)
from zope.interface import implementer

from childguard.log import get_logger

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

log = get_logger("childguard.netguard.ssrf")

# Networks that are never reachable for the crawler, beyond what `ipaddress` flags.
_EXTRA_FORBIDDEN = (
    ("cgnat", ipaddress.ip_network("100.64.0.0/10")),
    ("this-network", ipaddress.ip_network("0.0.0.0/8")),
    ("benchmarking", ipaddress.ip_network("198.18.0.0/15")),
    ("ietf-protocol", ipaddress.ip_network("192.0.0.0/24")),
)
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
FORBIDDEN_NAMES = ("localhost", "metadata.google.internal", "metadata")
NAT64 = ipaddress.ip_network("64:ff9b::/96")

# How a test or a local demo lets the crawler reach a private or loopback address.
ALLOW_PRIVATE_HINT = (
    "to crawl a test or demo site on a local address, pass --allow-private to "
    "`childguard crawl run` (allow_private=True to run_crawl), or name the host in the "
    "CHILDGUARD_ALLOW_PRIVATE_HOSTS setting"
)

# Hosts the resolver refused in this process, with why (the middleware turns a
# "cannot resolve" failure for one of these into a clear refusal).
REFUSED_HOSTS: dict[str, str] = {}


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    # IPv4-compatible (deprecated) ::a.b.c.d
    if int(ip) >> 32 == 0 and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip))
    return None


def forbidden_reason(ip: IPAddress | str) -> str | None:
    """Why the crawler may not connect to `ip`, or None when it may."""
    addr = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id:
            addr = ipaddress.IPv6Address(str(addr).split("%", 1)[0])
        inner = _embedded_v4(addr)
        if inner is not None:
            reason = forbidden_reason(inner)
            return f"embedded {inner}: {reason}" if reason else None
    if addr in METADATA_ADDRESSES:
        return "cloud metadata address"
    if addr.is_loopback:
        return "loopback address"
    if addr.is_link_local:
        return "link-local address"
    if addr.is_multicast:
        return "multicast address"
    if addr.is_unspecified:
        return "unspecified address"
    for name, net in _EXTRA_FORBIDDEN:
        if addr.version == net.version and addr in net:
            return f"{name} address"
    if addr.is_private:
        return "private address"
    if addr.is_reserved:
        return "reserved address"
    if not addr.is_global:
        return "non-global address"
    return None


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host spells, in any of the forms resolvers accept, else None."""
    h = host.strip("[]")
    try:
        return ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        pass
    if h and all(c in "0123456789abcdefxABCDEFX." for c in h) and any(c.isdigit() for c in h):
        try:  # inet_aton accepts 127.1, 0x7f.0.0.1, 2130706433, 0177.0.0.1
            return ipaddress.IPv4Address(socket.inet_aton(h))
        except OSError:
            return None
    return None


def url_refusal(url: str) -> str | None:
    """Why `url` may not be fetched by its spelling alone (scheme, literal address, local name)."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError as exc:
        return f"malformed URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme!r} is not fetched (only http and https)"
    if not host:
        return "URL has no host"
    if host in FORBIDDEN_NAMES or host.endswith(".localhost"):
        return f"host {host!r} is a local name"
    literal = parse_ip_literal(host)
    if literal is not None:
        reason = forbidden_reason(literal)
        if reason:
            return f"{host} is a {reason}"
    return None


def allowed_private_hosts(settings: Any) -> list[str]:
    """The entries of CHILDGUARD_ALLOW_PRIVATE_HOSTS (allow_private scoped to named endpoints,
    e.g. a demo site), lower-cased: `host:port`, `[v6]:port` or a bare `host`."""
    return [h.strip().lower() for h in settings.getlist("CHILDGUARD_ALLOW_PRIVATE_HOSTS")]


_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_endpoint(url: str) -> tuple[str, int] | None:
    """(host, port) a URL connects to (the scheme's default port where it names none)."""
    try:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    return (host, port) if host and port else None


class Exemption:
    """Which (host, port) endpoints CHILDGUARD_ALLOW_PRIVATE_HOSTS exempts: `host:port` entries
    exactly; a bare `host` at the ports `seeds` name for it (80 and 443 where none do)."""

    def __init__(self, entries: Sequence[str], seeds: Sequence[str] = ()) -> None:
        self.exact: set[tuple[str, int]] = set()
        bare: set[str] = set()
        for entry in entries:
            found = url_endpoint(f"http://{entry}/") if entry else None
            if found is None:
                continue
            if entry.rsplit("]", 1)[-1].count(":") == 1:  # names a port
                self.exact.add(found)
            else:
                bare.add(found[0])
        for seed in seeds:
            end = url_endpoint(seed)
            if end is not None and end[0] in bare:
                self.exact.add(end)
        named = {h for h, _ in self.exact}
        for host in bare - named:
            self.exact |= {(host, 80), (host, 443)}
        self.hosts = frozenset(h for h, _ in self.exact)

    def covers(self, host: str, port: int | None) -> bool:
        return (host.rstrip(".").lower(), port or 0) in self.exact

    def covers_url(self, url: str) -> bool:
        end = url_endpoint(url)
        return end is not None and end in self.exact


# The exemption of the spider running in this process (a crawl runs in a process of its own);
# the resolver is made before any spider exists, so the middleware publishes it here.
ACTIVE_EXEMPTION: dict[str, Exemption] = {}


def proxy_spelling_refusal(proxy: str) -> str | None:
    """Why a proxy URL can never be used, whatever the run's settings: not http(s), no host,
    or a literal address no proxy may have (cloud metadata, link-local, multicast,
    unspecified, reserved). Loopback and private proxies are refused at run time instead,
    unless the run lifts the policy for them."""
    try:
        parts = urlsplit(proxy)
        host = (parts.hostname or "").rstrip(".").lower()
        _ = parts.port
    except ValueError as exc:
        return f"malformed proxy URL: {exc}"
    if parts.scheme not in ("http", "https") or not host:
        return "a proxy must be an http:// or https:// URL with a host"
    literal = parse_ip_literal(host)
    if literal is None:
        return None
    reason = forbidden_reason(literal)
    if reason and not reason.endswith(_RUN_TIME_KINDS):
        return f"proxy {host} is a {reason}"
    return None


# Addresses a proxy may have in a test or a demo (refused at run time without allow_private).
_RUN_TIME_KINDS = ("loopback address", "private address")


def proxy_refusal(proxy: str, static_hosts: dict[str, Sequence[str]] | None = None) -> str | None:
    """Why the crawler may not connect to `proxy` (the same policy as any URL, and every
    address its host resolves to), or None."""
    reason = url_refusal(proxy)
    if reason:
        return f"proxy {reason}"
    end = url_endpoint(proxy)
    if end is None:
        return "proxy URL has no host"
    host, port = end
    static = {k.lower(): list(v) for k, v in (static_hosts or {}).items()}.get(host)
    if static is not None:
        addresses = list(static)
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            return f"proxy host {host!r} does not resolve: {exc}"
        addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        try:
            why = forbidden_reason(address)
        except ValueError:
            why = f"unparseable address {address!r}"
        if why:
            return f"proxy {host} resolves to {address}, a {why}"
    return None


def _address_ip(address: IAddress) -> str | None:
    return getattr(address, "host", None)


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str) -> None:
        self.name = name

    def cancel(self) -> None:  # pragma: no cover - resolution is synchronous here
        pass


@implementer(IResolutionReceiver)
class _FilteringReceiver:
    """Passes on only the addresses the policy allows; remembers why others were dropped."""

    def __init__(self, receiver: Any, host: str, allow_private: bool) -> None:
        self.receiver = receiver
        self.host = host
        self.allow_private = allow_private
        self.allowed = 0
        self.refused: list[str] = []

    def resolutionBegan(self, resolution: Any) -> None:
        self.receiver.resolutionBegan(resolution)

    def addressResolved(self, address: Any) -> None:
        ip = _address_ip(address)
        reason = None
        if ip is not None and not self.allow_private:
            try:
                reason = forbidden_reason(ip)
            except ValueError:
                reason = f"unparseable address {ip!r}"
        if reason:
            self.refused.append(f"{ip} ({reason})")
            return
        self.allowed += 1
        self.receiver.addressResolved(address)

    def resolutionComplete(self) -> None:
        if self.refused and not self.allowed:
            why = f"{self.host} resolves only to refused addresses: {', '.join(self.refused)}"
            REFUSED_HOSTS[self.host.lower()] = why
            log.warning("ssrf_refused", host=self.host, reason=why)
        self.receiver.resolutionComplete()


@implementer(IHostnameResolver)
class GuardedHostnameResolver(CachingHostnameResolver):
    """Scrapy's caching IPv4/IPv6 resolver with the address policy applied to every answer."""

    def __init__(
        self,
        reactor: Any,
        cache_size: int,
        *,
        allow_private: bool = False,
        static_hosts: dict[str, Sequence[str]] | None = None,
        allowed_hosts: Sequence[str] = (),
    ) -> None:
        super().__init__(reactor, cache_size)
        self.allow_private = allow_private
        self.static_hosts = {k.lower(): list(v) for k, v in (static_hosts or {}).items()}
        self.allowed_hosts = [h.lower() for h in allowed_hosts]

    @property
    def exemption(self) -> Exemption:
        """The exempt endpoints: those of the running spider (its seeds name the ports of bare
        host entries; `SsrfGuardMiddleware` publishes them when the spider opens)."""
        return ACTIVE_EXEMPTION.get("spider") or Exemption(self.allowed_hosts)

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: Any) -> GuardedHostnameResolver:
        s = crawler.settings
        cache = s.getint("DNSCACHE_SIZE") if s.getbool("DNSCACHE_ENABLED") else 0
        allowed = allowed_private_hosts(s)
        return cls(
            reactor,
            cache,
            allow_private=s.getbool("CHILDGUARD_ALLOW_PRIVATE"),
            static_hosts=s.getdict("CHILDGUARD_STATIC_HOSTS"),
            allowed_hosts=allowed,
        )

    def resolveHostName(
        self,
        resolutionReceiver: IResolutionReceiver,
        hostName: str,
        portNumber: int = 0,
        addressTypes: Sequence[type[IAddress]] | None = None,
        transportSemantics: str = "TCP",
    ) -> IHostResolution:
        allow = self.allow_private or self.exemption.covers(hostName, portNumber)
        receiver: Any = _FilteringReceiver(resolutionReceiver, hostName, allow)
        static = self.static_hosts.get(hostName.lower())
        if static is not None:
            resolution: Any = _Resolution(hostName)
            receiver.resolutionBegan(resolution)
            for ip in static:
                cls = IPv6Address if ":" in ip else IPv4Address
                receiver.addressResolved(cls("TCP", ip, portNumber))
            receiver.resolutionComplete()
            return resolution
        result: IHostResolution = super().resolveHostName(
            receiver, hostName, portNumber, addressTypes, transportSemantics
        )
        return result


class SsrfGuardMiddleware:
    """Downloader middleware: refuse forbidden URLs, redirects and peers (see module doc)."""

    def __init__(
        self,
        allow_private: bool,
        allowed_hosts: Sequence[str] = (),
        *,
        seeds: Sequence[str] = (),
        static_hosts: dict[str, Sequence[str]] | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = list(allowed_hosts)
        self.exemption = Exemption(self.allowed_hosts, seeds)
        self.static_hosts = dict(static_hosts or {})
        self.proxies: dict[str, str | None] = {}  # proxy URL -> why it is refused (None: not)
        self.stats: Any = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SsrfGuardMiddleware:
        mw = cls(
            crawler.settings.getbool("CHILDGUARD_ALLOW_PRIVATE"),
            allowed_private_hosts(crawler.settings),
            static_hosts=crawler.settings.getdict("CHILDGUARD_STATIC_HOSTS"),
        )
        mw.stats = crawler.stats
        crawler.signals.connect(mw._opened, signal=signals.spider_opened)
        return mw

    def _opened(self, spider: Spider) -> None:
        REFUSED_HOSTS.clear()
        seeds = list(getattr(getattr(spider, "watch", None), "seeds", ()) or ())
        self.exemption = Exemption(self.allowed_hosts, seeds)
        ACTIVE_EXEMPTION["spider"] = self.exemption

    def _proxy_refusal(self, proxy: str) -> str | None:
        if self.exemption.covers_url(proxy):
            return None
        if proxy not in self.proxies:
            self.proxies[proxy] = proxy_refusal(proxy, self.static_hosts)
        return self.proxies[proxy]

    def _refuse(self, request: Request, reason: str) -> None:
        if self.stats is not None:
            self.stats.inc_value("childguard/ssrf_refused")
        log.warning(
            "ssrf_refused",
            url=request.url,
            reason=reason,
            redirected_from=(request.meta.get("redirect_urls") or [None])[0],
            hint=ALLOW_PRIVATE_HINT,
        )
        raise IgnoreRequest(f"SSRF policy: {reason} ({ALLOW_PRIVATE_HINT})")

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        if self.allow_private:
            return
        proxy = request.meta.get("proxy")
        if proxy:
            why = self._proxy_refusal(str(proxy))
            if why:
                self._refuse(request, why)
        if self.exemption.covers_url(request.url):
            return
        reason = url_refusal(request.url)
        if reason:
            self._refuse(request, reason)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if self.allow_private or response.ip_address is None:
            return response
        proxy = request.meta.get("proxy")
        # Through a proxy the peer is the proxy: it is checked as the proxy's endpoint.
        if self.exemption.covers_url(str(proxy) if proxy else request.url):
            return response
        reason = forbidden_reason(response.ip_address)
        if reason:
            via = f" (the proxy {proxy})" if proxy else ""
            self._refuse(request, f"peer {response.ip_address}{via} is a {reason}")
        return response

    def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> None:
        host = (urlsplit(request.url).hostname or "").lower()
        why = REFUSED_HOSTS.get(host)
        if why and not self.allow_private:
            self._refuse(request, why)
