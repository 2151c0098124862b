# Owns the crawl's image fetching in its hash workers: the guarded keep-alive HTTP client, robots
# for image hosts, the fetch policy, and the per-host politeness gate on the reactor's side.
"""Image downloads off Scrapy's per-request path: each hash worker fetches the image bytes itself
and hashes them in the same process, so the bytes never cross a process boundary and the
reactor spends no request machinery on an image.

The spider still walks the *pages* with Scrapy. For each image it yields an `ImageItem` to fetch;
`HashPipeline` hands `(URL, the cache's validators)` to a worker (`fetch_image`, run through the
crawl's `HashQueue`) behind a `HostGate` (at most `CONCURRENT_REQUESTS_PER_DOMAIN` image fetches
per host at once, starts spaced by the watch's `DOWNLOAD_DELAY` with Scrapy's ±50% jitter). The
worker answers a `FetchOutcome`; the reactor's process records it (stats, cache, sightings).

In the worker every guarantee of a Scrapy image request holds:
- the SSRF policy (`childguard.netguard.ssrf`): each URL and each redirect hop by its spelling,
  and every connection opened only to an address the policy allows (static hosts first, DNS
  answers filtered again on every new connection), with the same `allow_private` and
  `CHILDGUARD_ALLOW_PRIVATE_HOSTS` exemptions (a redirect from an exempt endpoint to any other
  private one is refused);
- robots.txt of the image's host (fetched once per worker and host through the same client,
  parsed by Protego as Scrapy does; a robots.txt that cannot be fetched allows everything);
- size (`DOWNLOAD_MAXSIZE`, a video URL's own cap) and time (`DOWNLOAD_TIMEOUT` for the whole
  download, not only each read) limits, on decoded bytes;
- redirects (at most `REDIRECT_MAX_TIMES`), retries with backoff (`RETRY_TIMES`, Scrapy's codes
  and network errors), conditional requests (`If-None-Match` / `If-Modified-Since`; a `304` is
  reported as not modified, nothing hashed);
- bytes that are not an image or video are reported as such, not hashed.
Bytes whose sha256 the content cache knew when the crawl started, or that this worker hashed
already in this run, are not hashed again (`known`); the reactor takes their signals from the
cache. Hashing is `childguard.crawl.hashing.hash_fetched`, the pipeline's one road.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import random
import re
import select
import socket
import ssl
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urljoin, urlsplit

from childguard.crawl.hashing import hash_fetched
from childguard.media import sniff_content_type
from childguard.netguard.ssrf import (
    ALLOW_PRIVATE_HINT,
    Exemption,
    allowed_private_hosts,
    forbidden_reason,
    url_refusal,
)
from childguard.signals.content import ContentSignals

REDIRECT_CODES = (301, 302, 303, 307, 308)
# Scrapy's RETRY_HTTP_CODES default.
RETRY_CODES = (500, 502, 503, 504, 522, 524, 408, 429)
ROBOTS_MAXSIZE = 512 * 1024
CHUNK = 64 * 1024


class FetchRefusedError(Exception):
    """The SSRF policy refuses this URL or every address of its host."""


class _TooLarge(Exception):
    pass


class _Deadline(Exception):
    pass


@dataclass(frozen=True)
class FetchPolicy:
    """What one crawl's workers may fetch and how: the crawl's Scrapy settings, applied by hand."""

    user_agent: str
    allow_private: bool = False
    exemption: Exemption = field(default_factory=lambda: Exemption(()))
    static_hosts: Mapping[str, Sequence[str]] = field(default_factory=dict)
    obey_robots: bool = True
    timeout: float = 30.0
    maxsize: int = 40 * 1024 * 1024
    max_redirects: int = 5
    retry_times: int = 2
    backoff: float = 0.5
    backoff_max: float = 30.0

    @classmethod
    def from_settings(cls, values: Mapping[str, Any], seeds: Sequence[str]) -> FetchPolicy:
        """The policy of a crawl's Scrapy settings (read as Scrapy reads them, its defaults
        included) and its watch's seeds (which name the ports of bare exempt hosts)."""
        from scrapy.settings import Settings

        s = Settings(dict(values))
        static = s.getdict("CHILDGUARD_STATIC_HOSTS")
        return cls(
            user_agent=str(s.get("USER_AGENT") or "childguard"),
            allow_private=s.getbool("CHILDGUARD_ALLOW_PRIVATE"),
            exemption=Exemption(allowed_private_hosts(s), seeds),
            static_hosts={
                str(k).lower(): [v] if isinstance(v, str) else list(v) for k, v in static.items()
            },
            obey_robots=s.getbool("ROBOTSTXT_OBEY"),
            timeout=s.getfloat("DOWNLOAD_TIMEOUT"),
            maxsize=s.getint("DOWNLOAD_MAXSIZE"),
            max_redirects=s.getint("REDIRECT_MAX_TIMES") if s.getbool("REDIRECT_ENABLED") else 0,
            retry_times=s.getint("RETRY_TIMES") if s.getbool("RETRY_ENABLED") else 0,
            backoff=s.getfloat("CHILDGUARD_RETRY_BACKOFF", 0.5),
            backoff_max=s.getfloat("CHILDGUARD_RETRY_BACKOFF_MAX", 30.0),
        )

    def url_refusal(self, url: str) -> str | None:
        """Why `url` may not be fetched by its spelling (the middleware's checks), or None."""
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            return f"scheme {scheme!r} is not fetched (only http and https)"
        if self.allow_private or self.exemption.covers_url(url):
            return None
        return url_refusal(url)

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host` this crawl may connect to (static hosts first); raises
        FetchRefusedError when the policy leaves none."""
        host = host.strip("[]").rstrip(".").lower()
        static = self.static_hosts.get(host)
        if static is not None:
            found = list(static)
        else:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if self.allow_private or self.exemption.covers(host, port):
            return found
        allowed, refused = [], []
        for address in found:
            try:
                why = forbidden_reason(address)
            except ValueError:
                why = f"unparseable address {address!r}"
            if why:
                refused.append(f"{address} ({why})")
            else:
                allowed.append(address)
        if not allowed:
            raise FetchRefusedError(
                f"{host} resolves only to refused addresses: {', '.join(refused) or 'none'}"
            )
        return allowed


@dataclass(frozen=True)
class ImageJob:
    """One image for a worker: the URL, the cache's validators, its size cap, hashing options."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    maxsize: int | None = None  # None: the policy's
    robust: bool = False
    features: bool = False
    force: bool = False  # hash even bytes whose sha256 is known


@dataclass
class FetchOutcome:
    """What a worker found at an image URL; `hashes` only when it hashed the bytes."""

    url: str
    status: int = 0
    final_url: str = ""
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    gone: bool = False
    error: str | None = None
    refused: str | None = None  # the SSRF policy's reason
    not_an_image: bool = False
    robots_forbidden: bool = False
    content_type: str = ""
    nbytes: int = 0
    sha256: str | None = None
    known: bool = False  # bytes already hashed; the reactor takes the cached signals
    hashes: ContentSignals | None = None
    retries: int = 0
    redirects: int = 0


# -- the worker's side ------------------------------------------------------------------------

_POLICY: FetchPolicy | None = None
_KNOWN_SHA: set[str] = set()
_CLIENT: _Client | None = None


def configure(policy: FetchPolicy, known_sha: set[str] | None = None) -> None:
    """Set the fetch policy (and the sha256 the content cache holds) for this process and the
    workers it forks next."""
    global _POLICY, _KNOWN_SHA, _CLIENT
    _POLICY = policy
    _KNOWN_SHA = set(known_sha or ())
    _CLIENT = None


class _ConnectFailed(OSError):
    """No connection could be opened to any allowed address of a host."""


class _Truncated(Exception):
    """The connection closed before the body its Content-Length announced was read."""


# Idle keep-alive connections kept per (scheme, host, port), and hosts kept, per worker.
_IDLE_PER_HOST = 2
_HOSTS_KEPT = 64
_TLS: ssl.SSLContext | None = None
# A request target needs percent-encoding when it holds anything outside printable ASCII.
_UNSAFE_TARGET = re.compile(r"[^\x21-\x7e]")


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (or sent bytes
    nobody asked for); either way it is not reused."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


_NO_DEADLINE = float("inf")  # a socket's reads keep only their own timeout


class _DeadlineSocket(socket.socket):
    """A TCP socket whose every read ends by `deadline` (monotonic seconds), however slowly its
    bytes come: a server that drips a status line or headers is cut off at the time limit as
    one that drips a body is (a plain socket timeout only bounds each read)."""

    deadline = _NO_DEADLINE

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        if self.deadline != _NO_DEADLINE:
            self.settimeout(_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)


class _DeadlineSSLSocket(ssl.SSLSocket):
    """`_DeadlineSocket` for HTTPS: the TLS socket the verifying context wraps it in."""

    deadline = _NO_DEADLINE

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        if self.deadline != _NO_DEADLINE:
            self.settimeout(_left(self.deadline))
        return super().recv_into(buffer, nbytes, flags)


def _left(deadline: float) -> float:
    """Seconds left before `deadline`; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out: the time limit of the download passed")
    return left


def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context the workers' HTTPS connections share (system CAs, hostnames
    checked; its sockets end their reads at the download's deadline), made once per process."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
        _TLS.sslsocket_class = _DeadlineSSLSocket
    return _TLS


def _target(parts: SplitResult) -> str:
    """The request target of a URL (path and query, no fragment), percent-encoded as Scrapy and
    urllib3 encode unsafe characters."""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if _UNSAFE_TARGET.search(target):
        from w3lib.url import safe_url_string

        target = safe_url_string(target)
    return target


class _Inflater:
    """Decodes a gzip or deflate body as it arrives, never producing more than it is allowed
    (a compression bomb is cut off at the size cap, not expanded first)."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in ("gzip", "x-gzip")
        self._first = True
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS if self.gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        """The decoded bytes of `data`: at most `room + 1` (one more says it is over)."""
        out: list[bytes] = []
        size = 0
        while data and size <= room:
            try:
                piece = self._d.decompress(data, room + 1 - size)
            except zlib.error:
                if self.gzip or not self._first:
                    raise
                # "deflate" served raw, without the zlib wrapper (as urllib3 accepts it)
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                self._first = False
                continue
            self._first = False
            out.append(piece)
            size += len(piece)
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            elif self.gzip and self._d.eof and self._d.unused_data:
                data = self._d.unused_data  # a body of several gzip members
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = b""
        return b"".join(out)


def _decoders(encoding: str) -> list[_Inflater] | None:
    """The decoders of a Content-Encoding, outermost last; None to keep the bytes as served
    (identity, or an encoding this client did not ask for)."""
    names = [e.strip().lower() for e in encoding.split(",") if e.strip()]
    names = [n for n in names if n != "identity"]
    if not names or any(n not in ("gzip", "x-gzip", "deflate") for n in names):
        return None
    return [_Inflater(n) for n in reversed(names)]


class _Client:
    """Keep-alive HTTP/1.1 connections of one worker (the standard library's `http.client`,
    with no pool manager above it), every connection opened through the policy."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._idle: OrderedDict[tuple[str, str, int], list[http.client.HTTPConnection]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        self.robots: dict[str, Any] = {}
        self.connections_opened = 0

    # -- connections -------------------------------------------------------------------------
    def _opener(self, host: str, port: int) -> Any:
        """`http.client`'s socket factory for `host`: resolves it when a connection is made
        (static hosts first) and connects only to an address the policy allows."""

        def create(_address: Any, timeout: Any = None, source_address: Any = None) -> Any:
            try:
                addresses = self.policy.addresses(host, port)
            except socket.gaierror as exc:
                raise _ConnectFailed(f"cannot resolve {host}: {exc}") from exc
            last: OSError | None = None
            for address in addresses:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                sock = _DeadlineSocket(family, socket.SOCK_STREAM)
                try:
                    sock.settimeout(timeout)
                    sock.connect((address, port))
                except TimeoutError as exc:
                    sock.close()
                    last = _ConnectFailed(f"Connection to {host} timed out ({timeout})")
                    last.__cause__ = exc
                except OSError as exc:
                    sock.close()
                    last = _ConnectFailed(f"Failed to establish a new connection: {exc}")
                else:
                    self.connections_opened += 1
                    return sock
            assert last is not None
            raise last

        return create

    def _connection(self, key: tuple[str, str, int]) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection to `key` still open (reused: True), or a new one (not yet
        connected: it connects through the policy on its first request)."""
        conn: http.client.HTTPConnection
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                sock = conn.sock
                if sock is not None and not _readable(sock):
                    return conn, True
                conn.close()  # closed by the server while idle (or sent bytes unasked)
        scheme, host, port = key
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, context=_tls_context())
        else:
            conn = http.client.HTTPConnection(host, port)
        conn._create_connection = self._opener(host, port)  # type: ignore[attr-defined]
        return conn, False

    def _release(self, key: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        """Keep `conn` for the next request to `key` (a connection the server keeps open)."""
        if conn.sock is None:
            return
        with self._lock:
            idle = self._idle.setdefault(key, [])
            self._idle.move_to_end(key)
            kept = len(idle) < _IDLE_PER_HOST
            if kept:
                idle.append(conn)
            while len(self._idle) > _HOSTS_KEPT:
                _, dropped = self._idle.popitem(last=False)
                for old in dropped:
                    old.close()
        if not kept:
            conn.close()

    # -- one request ---------------------------------------------------------------------------
    def get(
        self, url: str, headers: dict[str, str], maxsize: int, deadline: float
    ) -> tuple[int, dict[str, str], bytes]:
        """One GET (no redirects followed): status, lower-cased headers, the decoded body up to
        `maxsize` (_TooLarge past it), all before `deadline` (_Deadline past it)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if scheme == "https" else 80)
        key = (scheme, host, port)
        target = _target(parts)
        while True:
            conn, reused = self._connection(key)
            left = max(0.05, deadline - time.monotonic())
            conn.timeout = left
            if conn.sock is not None:
                conn.sock.settimeout(left)
            try:
                conn.request("GET", target, headers=headers)
                sock = conn.sock  # kept: a response that closes the connection still reads it
                if isinstance(sock, _DeadlineSocket | _DeadlineSSLSocket):
                    sock.deadline = deadline  # the status line and headers too
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused:  # a kept connection the server had dropped: once more, afresh
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            break
        try:
            head: dict[str, str] = {}
            for name, value in resp.getheaders():
                name = name.lower()
                head[name] = f"{head[name]}, {value}" if name in head else value
            if resp.status in REDIRECT_CODES or resp.status == 304:
                self._discard_body(resp, deadline)
                body = b""
            else:
                body = self._body(url, resp, sock, head, maxsize, deadline)
        except BaseException:
            resp.close()
            conn.close()  # the connection is not reused mid-body
            raise
        resp.close()
        self._release(key, conn)
        return resp.status, head, body

    def _late(self, url: str) -> _Deadline:
        return _Deadline(f"Getting {url} took longer than {self.policy.timeout} seconds.")

    @staticmethod
    def _discard_body(resp: http.client.HTTPResponse, deadline: float) -> None:
        """Read a redirect's small body so the connection can be reused (a large one closes
        it instead)."""
        if resp.length is not None and resp.length > CHUNK:
            raise _Truncated("a redirect body too large to skip")
        read = 0
        while chunk := resp.read1(CHUNK):
            read += len(chunk)
            if read > CHUNK or time.monotonic() > deadline:
                raise _Truncated("a redirect body too large or too slow to skip")
        if resp.length:
            raise _Truncated("the connection closed mid-body")

    def _body(
        self,
        url: str,
        resp: http.client.HTTPResponse,
        sock: socket.socket | None,
        head: dict[str, str],
        maxsize: int,
        deadline: float,
    ) -> bytes:
        length = head.get("content-length", "")
        if length.isdigit() and int(length) > maxsize:
            raise _TooLarge(
                f"Cancelling download of {url}: expected response size ({length}) larger "
                f"than download max size ({maxsize})."
            )
        decoders = _decoders(head.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        while True:
            if sock is not None:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                chunk = resp.read1(CHUNK)
            except TimeoutError as exc:
                if time.monotonic() + 0.06 >= deadline:  # the time left ran out mid-body
                    raise self._late(url) from exc
                raise
            if not chunk:
                break
            if decoders is not None:
                for decoder in decoders:
                    chunk = decoder.feed(chunk, maxsize - size)
            size += len(chunk)
            if size > maxsize:
                raise _TooLarge(
                    f"Cancelling download of {url}: received response size ({size}) larger "
                    f"than download max size ({maxsize})."
                )
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise self._late(url)
        if resp.length:  # Content-Length promised more than the server sent
            raise _Truncated(
                f"IncompleteRead: the connection closed with {resp.length} bytes of {url} unread"
            )
        return b"".join(chunks)

    def allowed_by_robots(self, url: str) -> bool:
        """Whether robots.txt of `url`'s host lets this user agent fetch it."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self.robots:
            self.robots[origin] = self._robots(origin + "/robots.txt")
        parser = self.robots[origin]
        return parser is None or bool(parser.can_fetch(url, self.policy.user_agent))

    def _robots(self, url: str) -> Any:
        from protego import Protego

        try:
            status, _, body, _ = self.follow(url, {}, ROBOTS_MAXSIZE, time.monotonic() + 30)
        except Exception:  # a robots.txt that cannot be fetched allows everything, as in Scrapy
            return None
        if not 200 <= status < 300:
            return None
        return Protego.parse(body.decode("utf-8", errors="replace"))

    def follow(
        self, url: str, headers: dict[str, str], maxsize: int, deadline: float
    ) -> tuple[int, dict[str, str], bytes, int]:
        """GET `url`, following at most the policy's redirects, each hop checked by the policy:
        status, headers, body and the number of redirects."""
        hops = 0
        while True:
            why = self.policy.url_refusal(url)
            if why:
                raise FetchRefusedError(why)
            status, head, body = self.get(url, self._headers(headers), maxsize, deadline)
            if status not in REDIRECT_CODES or "location" not in head:
                return status, head, body, hops
            if hops >= self.policy.max_redirects:
                raise _TooManyRedirects(f"max redirections ({self.policy.max_redirects}) reached")
            hops += 1
            url = urljoin(url, head["location"])

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        return {
            "User-Agent": self.policy.user_agent,
            "Accept": "image/*,video/*,*/*;q=0.8",
            "Accept-Encoding": "gzip, deflate",
            **extra,
        }


class _TooManyRedirects(Exception):
    pass


_CLIENT_LOCK = threading.Lock()


def _client() -> _Client:
    global _CLIENT
    with _CLIENT_LOCK:  # a worker may run two fetches at once, in threads
        if _CLIENT is None:
            if _POLICY is None:
                raise RuntimeError("imagefetch.configure() was not called in this process")
            _CLIENT = _Client(_POLICY)
        return _CLIENT


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def fetch_image(job: ImageJob) -> FetchOutcome:
    """Fetch `job.url` under the crawl's policy and hash what it serves (in a hash worker)."""
    client = _client()
    policy = client.policy
    out = FetchOutcome(url=job.url)
    if policy.obey_robots:
        try:
            allowed = policy.url_refusal(job.url) is not None or client.allowed_by_robots(job.url)
        except Exception:
            allowed = True
        if not allowed:
            out.robots_forbidden = True
            out.error = "IgnoreRequest: Forbidden by robots.txt"
            return out
    headers: dict[str, str] = {}
    if job.etag:
        headers["If-None-Match"] = job.etag
    if job.last_modified:
        headers["If-Modified-Since"] = job.last_modified
    maxsize = job.maxsize if job.maxsize is not None else policy.maxsize
    attempt = 0
    while True:
        deadline = time.monotonic() + policy.timeout
        retry_why = None
        try:
            status, head, body, out.redirects = client.follow(job.url, headers, maxsize, deadline)
        except FetchRefusedError as exc:
            out.refused = str(exc)
            out.error = f"IgnoreRequest: SSRF policy: {exc} ({ALLOW_PRIVATE_HINT})"
            return out
        except (_TooLarge, _TooManyRedirects) as exc:
            out.error = _why(exc)[:500]
            return out
        except (_Deadline, _Truncated, http.client.HTTPException, OSError) as exc:
            retry_why = _why(exc)
        else:
            if status in RETRY_CODES:
                retry_why = f"HttpError: Ignoring non-200 response ({status})"
        if retry_why is not None:
            if attempt < policy.retry_times:
                attempt += 1
                out.retries = attempt
                time.sleep(min(policy.backoff_max, policy.backoff * 2 ** (attempt - 1)))
                continue
            out.error = retry_why[:500]
            return out
        break
    out.status = status
    out.etag, out.last_modified = head.get("etag"), head.get("last-modified")
    out.content_type = head.get("content-type", "")
    if status == 304:
        out.not_modified = True
        return out
    if status in (404, 410):
        out.gone = True
        return out
    if not 200 <= status < 300:
        out.error = f"HttpError: Ignoring non-200 response ({status})"
        return out
    out.nbytes = len(body)
    if sniff_content_type(body[:64]) is None:
        out.not_an_image = True
        out.error = f"not an image or video (Content-Type {out.content_type or 'missing'})"
        return out
    sha = hashlib.sha256(body).hexdigest()
    out.sha256 = sha
    if sha in _KNOWN_SHA and not job.force:
        out.known = True
        return out
    out.hashes = hash_fetched(body, robust=job.robust, features=job.features)
    _KNOWN_SHA.add(sha)
    return out


# -- the reactor's side -----------------------------------------------------------------------


@dataclass
class _Host:
    sem: asyncio.Semaphore
    next_start: float = 0.0


class HostGate:
    """Per-host politeness for image fetches, on the event loop: at most `concurrency` at once
    per host, and (with a `delay`) starts spaced by `delay` times a random factor in
    [1 - jitter, 1 + jitter], as Scrapy spaces a download slot's requests."""

    def __init__(self, concurrency: int, delay: float = 0.0, jitter: float = 0.5) -> None:
        self.concurrency = max(1, concurrency)
        self.delay = max(0.0, delay)
        self.jitter = jitter
        self._hosts: dict[str, _Host] = {}
        self.waits = 0

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        h = self._hosts.get(host)
        if h is None:
            h = self._hosts[host] = _Host(asyncio.Semaphore(self.concurrency))
        await h.sem.acquire()
        try:
            if self.delay > 0:
                loop = asyncio.get_running_loop()
                now = loop.time()
                start = max(now, h.next_start)
                factor = random.uniform(1 - self.jitter, 1 + self.jitter) if self.jitter else 1.0
                h.next_start = start + self.delay * factor
                if start > now:
                    self.waits += 1
                    await asyncio.sleep(start - now)
            yield
        finally:
            h.sem.release()
