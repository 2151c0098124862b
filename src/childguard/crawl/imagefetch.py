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


class _Closed(ConnectionError):
    """The server closed the connection before sending a byte of its response."""


# Idle keep-alive connections kept per (scheme, host, port), and hosts kept, per worker.
_IDLE_PER_HOST = 2
_HOSTS_KEPT = 64
_TLS: ssl.SSLContext | None = None
# A request target needs percent-encoding when it holds anything outside printable ASCII.
_UNSAFE_TARGET = re.compile(r"[^\x21-\x7e]")
# What a header name or value may not hold (it would end the line: request splitting).
_ILLEGAL_HEADER = re.compile(r"[\r\n\0]")
# A response head (status line and headers) is refused past these, as `http.client` refuses
# longer lines and more headers; a chunk-size or trailer line past its own.
_HEAD_MAX = 256 * 1024
_HEADERS_MAX = 100
_LINE_MAX = 64 * 1024
_INTERIM_MAX = 8  # interim (1xx) responses skipped before a final one
_HEAD_END = re.compile(rb"\r?\n\r?\n")


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (or sent bytes
    nobody asked for); either way it is not reused."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _left(deadline: float) -> float:
    """Seconds left before `deadline`; TimeoutError once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out: the time limit of the download passed")
    return left


def _tls_context() -> ssl.SSLContext:
    """The verifying TLS context the workers' HTTPS connections share (system CAs, hostnames
    checked), made once per process."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return _TLS


def _target(parts: SplitResult) -> str:
    """The request target of a URL (path and query, no fragment), percent-encoded as Scrapy and
    urllib3 encode unsafe characters."""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if _UNSAFE_TARGET.search(target):
        from w3lib.url import safe_url_string

        target = safe_url_string(target)
    return target


def _host_header(host: str, port: int, scheme: str) -> str:
    """The Host header of a request (as `http.client` writes it: IDNA for a name that is not
    ASCII, brackets around an IPv6 address, the port unless it is the scheme's own)."""
    try:
        name = host.encode("ascii").decode("ascii")
    except UnicodeEncodeError:
        name = host.encode("idna").decode("ascii")
    if ":" in name:
        name = f"[{name}]"
    default = 443 if scheme == "https" else 80
    return name if port == default else f"{name}:{port}"


class _BadResponse(http.client.HTTPException):
    """What the server sent is not an HTTP/1.x response this client reads."""


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


class _Connection:
    """One HTTP/1.1 connection (plain or TLS) and the bytes read from it past the last
    response's head. Every read ends by the request's deadline, however slowly the bytes come
    (a plain socket timeout would only bound each read)."""

    __slots__ = ("buf", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def read(self, deadline: float) -> bytes:
        """The next bytes from the server (b"" once it has closed), before `deadline`."""
        self.sock.settimeout(_left(deadline))
        return self.sock.recv(CHUNK)

    def take(self, n: int, deadline: float) -> bytes:
        """Up to `n` bytes: those buffered first, else one read (b"" at the end)."""
        if self.buf:
            piece = bytes(self.buf[:n])
            del self.buf[:n]
            return piece
        data = self.read(deadline)
        if len(data) > n:
            self.buf += data[n:]
            return data[:n]
        return data

    def line(self, deadline: float, limit: int = _LINE_MAX) -> bytes:
        """One line (without its end), for chunk sizes and trailers."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end])
                del self.buf[: end + 1]
                return line.rstrip(b"\r")
            if len(self.buf) > limit:
                raise _BadResponse("a chunk line too long")
            data = self.read(deadline)
            if not data:
                raise _Truncated("IncompleteRead: the connection closed mid-chunk")
            self.buf += data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _parse_head(raw: bytes) -> tuple[int, str, dict[str, str]]:
    """Status, version and lower-cased headers (repeated ones joined by ", ", folded lines
    unfolded) of a response head."""
    lines = raw.split(b"\n")
    status_line = lines[0].rstrip(b"\r").decode("latin-1")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _BadResponse(f"BadStatusLine: {status_line[:100]!r}")
    status = int(parts[1])
    if not 100 <= status <= 999:
        raise _BadResponse(f"BadStatusLine: {status_line[:100]!r}")
    head: dict[str, str] = {}
    name = ""
    count = 0
    for line in lines[1:]:
        text = line.rstrip(b"\r").decode("latin-1")
        if not text:
            continue
        if text[0] in " \t" and name:  # a folded continuation of the previous header
            head[name] = f"{head[name]} {text.strip()}"
            continue
        key, sep, value = text.partition(":")
        if not sep:
            continue  # not a header line: skipped, as the standard library's parser does
        count += 1
        if count > _HEADERS_MAX:
            raise _BadResponse(f"got more than {_HEADERS_MAX} headers")
        name, value = key.strip().lower(), value.strip()
        head[name] = f"{head[name]}, {value}" if name in head else value
    return status, parts[0], head


class _Client:
    """Keep-alive HTTP/1.1 connections of one worker, every connection opened through the
    policy. A small client of its own on plain sockets (and the standard library's TLS): the
    request is one write, the head one search and one split, the body read straight into its
    pieces. It costs less than half the CPU `http.client` took per image (0.14 against 0.33 ms
    for a 100 KB JPEG on loopback, most of it `http.client`'s header parsing through the e-mail
    package), and holds the GIL for less of it, while the worker's other thread hashes."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._idle: OrderedDict[tuple[str, str, int], list[_Connection]] = OrderedDict()
        self._lock = threading.Lock()
        self.robots: dict[str, Any] = {}
        self.connections_opened = 0

    # -- connections -------------------------------------------------------------------------
    def _open(self, key: tuple[str, str, int], deadline: float) -> _Connection:
        """A new connection to `key`: the host resolved now (static hosts first), connected
        only to an address the policy allows, TLS verified for https."""
        scheme, host, port = key
        try:
            addresses = self.policy.addresses(host, port)
        except socket.gaierror as exc:
            raise _ConnectFailed(f"cannot resolve {host}: {exc}") from exc
        last: OSError | None = None
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            timeout = _left(deadline)
            try:
                sock.settimeout(timeout)
                sock.connect((address, port))
            except TimeoutError as exc:
                sock.close()
                last = _ConnectFailed(f"Connection to {host} timed out ({timeout:.1f})")
                last.__cause__ = exc
                continue
            except OSError as exc:
                sock.close()
                last = _ConnectFailed(f"Failed to establish a new connection: {exc}")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                try:
                    sock.settimeout(_left(deadline))
                    sock = _tls_context().wrap_socket(sock, server_hostname=host.strip("[]"))
                except BaseException:
                    sock.close()
                    raise
            self.connections_opened += 1
            return _Connection(sock)
        assert last is not None
        raise last

    def _connection(self, key: tuple[str, str, int]) -> _Connection | None:
        """An idle connection to `key` still open, or None."""
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if not _readable(conn.sock):
                    return conn
                conn.close()  # closed by the server while idle (or sent bytes unasked)
        return None

    def _release(self, key: tuple[str, str, int], conn: _Connection) -> None:
        """Keep `conn` for the next request to `key` (a connection the server keeps open)."""
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
        lines = [f"GET {_target(parts)} HTTP/1.1", f"Host: {_host_header(host, port, scheme)}"]
        for name, value in headers.items():
            if _ILLEGAL_HEADER.search(name) or _ILLEGAL_HEADER.search(value):
                raise ValueError(f"Invalid header {name!r}: {value[:100]!r}")
            lines.append(f"{name}: {value}")
        request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        while True:
            conn = self._connection(key)
            reused = conn is not None
            if conn is None:
                conn = self._open(key, deadline)
            try:
                conn.sock.settimeout(_left(deadline))
                conn.sock.sendall(request)
                status, version, head = self._head(conn, deadline)
            except (_Closed, ConnectionResetError, BrokenPipeError):
                conn.close()
                if reused:  # a kept connection the server had dropped: once more, afresh
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            break
        try:
            body, keep = self._body(url, conn, status, version, head, maxsize, deadline)
        except BaseException:
            conn.close()  # the connection is not reused mid-body
            raise
        if keep and not conn.buf:
            self._release(key, conn)
        else:
            conn.close()
        return status, head, body

    @staticmethod
    def _head(conn: _Connection, deadline: float) -> tuple[int, str, dict[str, str]]:
        """The next final response's status, version and headers (interim 1xx ones skipped)."""
        buf = conn.buf
        for _ in range(_INTERIM_MAX):
            start = 0  # where the search for the head's end resumes
            while (end := _HEAD_END.search(buf, start)) is None:
                if len(buf) > _HEAD_MAX:
                    raise _BadResponse(f"response headers longer than {_HEAD_MAX} bytes")
                start = max(0, len(buf) - 3)
                data = conn.read(deadline)
                if not data:
                    if buf:
                        raise _BadResponse("the connection closed mid-head")
                    raise _Closed("Remote end closed connection without response")
                buf += data
            status, version, head = _parse_head(bytes(buf[: end.end()]))
            del buf[: end.end()]
            if not 100 <= status < 200 or status == 101:
                return status, version, head
        raise _BadResponse(f"more than {_INTERIM_MAX} interim responses")

    def _late(self, url: str) -> _Deadline:
        return _Deadline(f"Getting {url} took longer than {self.policy.timeout} seconds.")

    def _body(
        self,
        url: str,
        conn: _Connection,
        status: int,
        version: str,
        head: dict[str, str],
        maxsize: int,
        deadline: float,
    ) -> tuple[bytes, bool]:
        """The decoded body and whether the connection may be reused after it. A redirect's or
        a 304's own small body is read and dropped (a large one closes the connection)."""
        keep = "close" not in head.get("connection", "").lower() and (
            version != "HTTP/1.0" or "keep-alive" in head.get("connection", "").lower()
        )
        if status in (204, 304):
            return b"", keep
        chunked = head.get("transfer-encoding", "").lower().rsplit(",", 1)[-1].strip() == (
            "chunked"
        )
        length: int | None = None
        if not chunked:
            value = head.get("content-length", "").strip()
            if value.isdigit():
                length = int(value)
            else:
                keep = False  # read until the server closes
        skipping = status in REDIRECT_CODES
        if skipping:
            maxsize = CHUNK
        elif length is not None and length > maxsize:
            raise _TooLarge(
                f"Cancelling download of {url}: expected response size ({length}) larger "
                f"than download max size ({maxsize})."
            )
        decoders = None if skipping else _decoders(head.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0

        def add(piece: bytes) -> None:
            nonlocal size
            if decoders is not None:
                for decoder in decoders:
                    piece = decoder.feed(piece, maxsize - size)
            size += len(piece)
            if size > maxsize:
                if skipping:
                    raise _Truncated("a redirect body too large to skip")
                raise _TooLarge(
                    f"Cancelling download of {url}: received response size ({size}) larger "
                    f"than download max size ({maxsize})."
                )
            chunks.append(piece)

        try:
            if chunked:
                self._chunks(conn, deadline, add)
            elif length is not None:
                left = length
                while left:
                    piece = conn.take(min(left, CHUNK * 4), deadline)
                    if not piece:  # Content-Length promised more than the server sent
                        raise _Truncated(
                            f"IncompleteRead: the connection closed with {left} bytes of {url}"
                            " unread"
                        )
                    left -= len(piece)
                    add(piece)
            else:
                while piece := conn.take(CHUNK * 4, deadline):
                    add(piece)
        except TimeoutError as exc:
            if time.monotonic() + 0.06 >= deadline:  # the time left ran out mid-body
                raise self._late(url) from exc
            raise
        if time.monotonic() > deadline:
            raise self._late(url)
        return b"".join(chunks), keep

    @staticmethod
    def _chunks(conn: _Connection, deadline: float, add: Any) -> None:
        """A chunked body, each chunk's bytes handed to `add`; trailers read and dropped."""
        while True:
            line = conn.line(deadline)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadResponse(f"a bad chunk size {size_text[:20]!r}") from None
            if size == 0:
                while conn.line(deadline):  # trailers, up to the empty line
                    pass
                return
            left = size
            while left:
                piece = conn.take(min(left, CHUNK * 4), deadline)
                if not piece:
                    raise _Truncated("IncompleteRead: the connection closed mid-chunk")
                left -= len(piece)
                add(piece)
            if conn.line(deadline):
                raise _BadResponse("a chunk not followed by its line end")

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
    # A validator that would end its header line (a hostile server's) is not sent back.
    if job.etag and not _ILLEGAL_HEADER.search(job.etag):
        headers["If-None-Match"] = job.etag
    if job.last_modified and not _ILLEGAL_HEADER.search(job.last_modified):
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
    out.hashes = hash_fetched(body, robust=job.robust, features=job.features, sha256=sha)
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
