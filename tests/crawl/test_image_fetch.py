"""The hash workers' own image fetch (`childguard.crawl.imagefetch`): every guarantee a Scrapy
image request had, checked against the real test site on 127.0.0.1 (and a raw socket server for
bodies that drip or never end), then through whole crawls."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import itertools
import socket
import statistics
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from childguard.crawl.imagefetch import (
    FetchPolicy,
    HostGate,
    ImageJob,
    configure,
    fetch_image,
)
from childguard.crawl.runner import run_crawl
from childguard.crawl.watch import Watch
from childguard.netguard.ssrf import Exemption


def _route(site: Any, *args: Any) -> Any:
    """A route of the test site (the conftest's `Route`; test modules cannot import it)."""
    return type(site.routes["/robots.txt"])(*args)


def _policy(**kw: Any) -> FetchPolicy:
    values: dict[str, Any] = {
        "user_agent": "childguard-test",
        "obey_robots": False,
        "timeout": 5.0,
        "retry_times": 0,
        "backoff": 0.0,
    }
    values.update(kw)
    return FetchPolicy(**values)


def _fetch(url: str, policy: FetchPolicy, known: set[str] | None = None, **job: Any) -> Any:
    configure(policy, known)
    return fetch_image(ImageJob(url, **job))


@pytest.fixture(scope="module")
def endless() -> Iterator[tuple[int, dict[str, int]]]:
    """A raw HTTP server: `/drip` sends a JPEG header and then one byte every 0.1 s forever;
    `/head` drips its headers so, one byte every 0.1 s; `/flood` sends bytes without a
    Content-Length until the client hangs up."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    served: dict[str, int] = {"drip": 0, "flood": 0, "head": 0}
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            request = conn.recv(4096).decode("latin-1")
            path = request.split(" ", 2)[1] if " " in request else "/"
            if path == "/head":
                served["head"] += 1
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.is_set():
                    conn.sendall(b"a")
                    time.sleep(0.1)
                return
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n"
                b"\xff\xd8\xff\xe0"
            )
            name = "drip" if path == "/drip" else "flood"
            served[name] += 1
            while not stop.is_set():
                if name == "drip":
                    conn.sendall(b"\0")
                    time.sleep(0.1)
                else:
                    conn.sendall(b"\0" * 65536)

    _serve_each_connection(server, handle)
    yield port, served
    stop.set()
    server.close()


def _serve_each_connection(server: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """Accept connections on `server` until it is closed, each handled in a thread of its own."""

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


@dataclass
class RawSite:
    """Raw HTTP/1.1 answers by path, over keep-alive connections that the server closes after
    `idle` seconds without a request (as a real server's keep-alive timeout does)."""

    port: int = 0
    answers: dict[str, bytes] = field(default_factory=dict)
    close_after: set[str] = field(default_factory=set)
    connections: int = 0
    served: dict[str, int] = field(default_factory=dict)
    idle: float = 0.3

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _answer(body: bytes, *headers: str, length: int | None = None) -> bytes:
    head = ["HTTP/1.1 200 OK", "Content-Type: image/jpeg", *headers]
    if not any(h.lower().startswith("transfer-encoding") for h in headers):
        head.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


@pytest.fixture(scope="module")
def raw() -> Iterator[RawSite]:
    server = socket.create_server(("127.0.0.1", 0))
    site = RawSite(port=server.getsockname()[1])
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        conn.settimeout(site.idle)
        buf = b""
        with contextlib.suppress(OSError), conn:
            while not stop.is_set():
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)  # times out once idle: the connection closes
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1].decode()
                site.served[path] = site.served.get(path, 0) + 1
                conn.sendall(site.answers.get(path, b"HTTP/1.1 404 Not Found\r\n\r\n"))
                if path in site.close_after:
                    return

    def accepted(conn: socket.socket) -> None:
        site.connections += 1
        handle(conn)

    _serve_each_connection(server, accepted)
    yield site
    stop.set()
    server.close()


def test_http_client_decodes_reuses_connections_and_recovers(raw: RawSite, make_photo: Any) -> None:
    """The workers' HTTP/1.1 client: gzip and deflate bodies decoded (and capped as decoded
    bytes), chunked bodies, keep-alive connections reused, a connection the server closed while
    idle replaced without a retry, and a body cut short of its Content-Length retried."""
    photo = make_photo(6)
    sha = hashlib.sha256(photo).hexdigest()
    deflater = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw_deflate = deflater.compress(photo) + deflater.flush()
    chunks = [photo[:1000], photo[1000:5000], photo[5000:]]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    raw.answers.update(
        {
            "/plain.jpg": _answer(photo),
            "/gzip.jpg": _answer(gzip.compress(photo), "Content-Encoding: gzip"),
            "/zlib.jpg": _answer(zlib.compress(photo), "Content-Encoding: deflate"),
            "/deflate.jpg": _answer(raw_deflate, "Content-Encoding: deflate"),
            "/chunked.jpg": _answer(chunked, "Transfer-Encoding: chunked"),
            "/bomb.jpg": _answer(gzip.compress(b"\0" * 20_000_000), "Content-Encoding: gzip"),
            "/short.jpg": _answer(photo[:2000], length=len(photo)),
        }
    )
    raw.close_after.add("/short.jpg")
    policy = _policy(allow_private=True, maxsize=1_000_000, retry_times=1, backoff=0.01)
    configure(policy)
    before = raw.connections
    for path in ("/plain.jpg", "/gzip.jpg", "/zlib.jpg", "/deflate.jpg", "/chunked.jpg"):
        out = fetch_image(ImageJob(raw.url(path), force=True))  # the same bytes, hashed each time
        assert out.error is None and out.sha256 == sha and out.nbytes == len(photo), path
        assert out.hashes is not None and out.hashes.value("pdq")
    assert raw.connections == before + 1  # one keep-alive connection for all five
    time.sleep(raw.idle + 0.3)  # the server closes it while it sits idle
    again = fetch_image(ImageJob(raw.url("/plain.jpg"), force=True))
    assert again.error is None and again.retries == 0 and again.hashes is not None
    assert raw.connections == before + 2
    raw.answers["/a%20b/%C3%A9t%C3%A9.jpg"] = _answer(photo)  # as Scrapy would encode it
    spaced = fetch_image(ImageJob(raw.url("/a b/été.jpg"), force=True))
    assert spaced.error is None and spaced.sha256 == sha
    bomb = fetch_image(ImageJob(raw.url("/bomb.jpg")))
    assert bomb.error and "larger than download max size (1000000)" in bomb.error
    short = fetch_image(ImageJob(raw.url("/short.jpg")))
    assert short.error and "IncompleteRead" in short.error and short.hashes is None
    assert short.retries == 1 and raw.served["/short.jpg"] == 2


def _head_of(photo: bytes, *lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + photo


def test_http_client_framing_interim_answers_and_bad_heads(raw: RawSite, make_photo: Any) -> None:
    """The workers' HTTP/1.1 client reads what servers send: interim 1xx answers skipped, folded
    and LF-only headers, a body read to the close when no length is given; a connection is
    reused only when the server keeps it (not after `Connection: close`, nor HTTP/1.0 without
    keep-alive); heads that are not HTTP, or have too many headers, fail the fetch; a validator
    that would end its header line is never sent back."""
    photo = make_photo(8)
    sha = hashlib.sha256(photo).hexdigest()
    n = len(photo)
    raw.answers.update(
        {
            "/early.jpg": b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + _answer(photo),
            "/folded.jpg": _answer(photo, "X-Long: one", " two"),
            "/lf.jpg": f"HTTP/1.1 200 OK\nContent-Length: {n}\n\n".encode() + photo,
            "/old.jpg": _head_of(photo, "HTTP/1.0 200 OK", f"Content-Length: {n}"),
            "/close.jpg": _answer(photo, "Connection: close"),
            "/to-close.jpg": _head_of(photo, "HTTP/1.1 200 OK", "Content-Type: image/jpeg"),
            "/many.jpg": _answer(photo, *(f"X-{i}: {i}" for i in range(101))),
            "/garbage.jpg": b"SPDY/9 what\r\n\r\n",
            "/etag.jpg": _answer(photo, 'ETag: "a"'),
        }
    )
    raw.close_after.update({"/to-close.jpg", "/close.jpg"})  # /old.jpg: the client must close
    configure(_policy(allow_private=True))
    opened = raw.connections
    for path in ("/early.jpg", "/folded.jpg", "/lf.jpg"):
        out = fetch_image(ImageJob(raw.url(path), force=True))
        assert out.error is None and out.sha256 == sha and out.status == 200, path
    assert raw.connections == opened + 1  # one kept connection for the three
    for path in ("/old.jpg", "/close.jpg", "/to-close.jpg"):
        out = fetch_image(ImageJob(raw.url(path), force=True))
        assert out.error is None and out.sha256 == sha, path
    assert raw.connections == opened + 3  # the kept one, then a new one after each close
    many = fetch_image(ImageJob(raw.url("/many.jpg")))
    assert many.error and "more than 100 headers" in many.error and many.hashes is None
    garbage = fetch_image(ImageJob(raw.url("/garbage.jpg")))
    assert garbage.error and "BadStatusLine" in garbage.error
    evil = fetch_image(ImageJob(raw.url("/etag.jpg"), etag='"a"\r\nX-Evil: 1', force=True))
    assert evil.error is None and evil.sha256 == sha and evil.status == 200  # sent without it


def test_ssrf_policy_checks_every_hop_and_every_connection(site: Any, make_photo: Any) -> None:
    site.image("/a.jpg", make_photo(1))
    site.routes["/hop.jpg"] = _route(
        site, b"", 302, "text/html", {"Location": f"http://127.0.0.1:{site.port}/a.jpg"}
    )
    port = site.port
    strict = _policy(
        exemption=Exemption([f"seed.test:{port}"]),
        static_hosts={"seed.test": ["127.0.0.1"], "private.test": ["10.0.0.7", "127.0.0.1"]},
    )
    ok = _fetch(f"http://seed.test:{port}/a.jpg", strict)  # the exempt endpoint
    assert ok.error is None and ok.hashes is not None and ok.hashes.value("pdq")
    assert ok.sha256 == hashlib.sha256(make_photo(1)).hexdigest()
    literal = _fetch(site.url("/a.jpg"), strict)  # a loopback literal, by its spelling
    assert literal.refused and "loopback" in literal.refused and literal.hashes is None
    named = _fetch(f"http://private.test:{port}/a.jpg", strict)  # by every address it resolves to
    assert named.refused and "resolves only to refused addresses" in named.refused
    hits = site.count("/a.jpg")
    redirected = _fetch(f"http://seed.test:{port}/hop.jpg", strict)  # the exempt host redirects
    assert redirected.refused and "loopback" in redirected.refused
    assert site.count("/hop.jpg") == 1 and site.count("/a.jpg") == hits  # never followed
    assert "SSRF policy" in (redirected.error or "")
    other_port = _fetch(f"http://seed.test:{port + 1}/a.jpg", strict)  # not the exempt port
    assert other_port.refused
    assert _fetch("file:///etc/passwd", _policy(allow_private=True)).refused  # scheme, always
    lifted = _fetch(f"http://127.0.0.1:{port}/hop.jpg", _policy(allow_private=True))
    assert lifted.error is None and lifted.hashes is not None and lifted.redirects == 1


def test_statuses_conditional_requests_known_bytes_and_redirect_limit(
    site: Any, make_photo: Any
) -> None:
    data = make_photo(2)
    site.image("/e.jpg", data, etag=True)
    site.page("/page.html", "<html>not an image</html>")
    site.routes["/boom.jpg"] = _route(site, b"x", 503, "text/plain")
    for i in range(7):
        site.routes[f"/r{i}.jpg"] = _route(
            site, b"", 301, "text/html", {"Location": f"/r{i + 1}.jpg"}
        )
    site.image("/r7.jpg", data)
    policy = _policy(allow_private=True, retry_times=2, backoff=0.01)
    first = _fetch(site.url("/e.jpg"), policy)
    assert first.status == 200 and first.etag and first.hashes is not None
    again = _fetch(site.url("/e.jpg"), policy, etag=first.etag)
    assert again.not_modified and again.status == 304 and again.hashes is None
    assert site.requests_to("/e.jpg")[-1].get("If-None-Match") == first.etag
    known = _fetch(site.url("/e.jpg"), policy, known={first.sha256 or ""})
    assert known.known and known.hashes is None and known.sha256 == first.sha256
    forced = _fetch(site.url("/e.jpg"), policy, known={first.sha256 or ""}, force=True)
    assert forced.hashes is not None and not forced.known
    gone = _fetch(site.url("/missing.jpg"), policy)
    assert gone.gone and gone.status == 404
    html = _fetch(site.url("/page.html"), policy)
    assert html.not_an_image and html.hashes is None and "text/html" in (html.error or "")
    boom = _fetch(site.url("/boom.jpg"), policy)
    assert boom.error and "503" in boom.error and boom.retries == 2
    assert site.count("/boom.jpg") == 3  # one try and two retries
    looped = _fetch(site.url("/r0.jpg"), policy)
    assert looped.error and "max redirections (5)" in looped.error
    assert site.count("/r5.jpg") == 1 and site.count("/r6.jpg") == 0


def test_size_and_time_limits_fail_cleanly(site: Any, make_photo: Any, endless: Any) -> None:
    port, served = endless
    site.image("/big.jpg", make_photo(3, size=(900, 700)))
    site.image("/slow.jpg", make_photo(4), delay=3.0)
    small = _policy(allow_private=True, maxsize=10_000, timeout=1.0)
    big = _fetch(site.url("/big.jpg"), small)
    assert big.error and "larger than download max size (10000)" in big.error
    assert big.hashes is None
    t0 = time.monotonic()
    flood = _fetch(f"http://127.0.0.1:{port}/flood", small)  # no Content-Length, never ends
    assert flood.error and "larger than download max size" in flood.error
    drip = _fetch(f"http://127.0.0.1:{port}/drip", small)  # a byte every 0.1 s, forever
    assert drip.error and "took longer than 1.0 seconds" in drip.error
    t1 = time.monotonic()
    head = _fetch(f"http://127.0.0.1:{port}/head", small)  # headers that never end
    assert head.error and "timed out" in head.error and head.hashes is None
    assert time.monotonic() - t1 < 1.8  # cut off at the time limit, not at each read's
    slow = _fetch(site.url("/slow.jpg"), small)  # no answer within the time limit
    assert slow.error and "timed out" in slow.error.lower()
    assert time.monotonic() - t0 < 7  # each stopped at its limit, none hung
    assert served == {"drip": 1, "flood": 1, "head": 1}
    video = _fetch(site.url("/big.jpg"), small, maxsize=10_000_000)  # a job's own cap wins
    assert video.error is None and video.hashes is not None


def test_robots_txt_of_the_image_host(site: Any, make_photo: Any) -> None:
    site.routes["/robots.txt"] = _route(
        site, b"User-agent: *\nDisallow: /private/\n", 200, "text/plain"
    )
    site.image("/private/a.jpg", make_photo(5))
    site.image("/public/a.jpg", make_photo(5))
    policy = _policy(allow_private=True, obey_robots=True)
    configure(policy)
    no = fetch_image(ImageJob(site.url("/private/a.jpg")))
    yes = fetch_image(ImageJob(site.url("/public/a.jpg")))
    assert no.robots_forbidden and no.hashes is None and "robots.txt" in (no.error or "")
    assert yes.hashes is not None
    assert site.count("/private/a.jpg") == 0 and site.count("/robots.txt") == 1  # once per host
    ignored = _fetch(site.url("/private/a.jpg"), _policy(allow_private=True, obey_robots=False))
    assert ignored.hashes is not None


def test_host_gate_bounds_concurrency_and_spaces_starts() -> None:
    async def run() -> tuple[int, list[float]]:
        gate = HostGate(2, delay=0.1, jitter=0.5)
        active, peak, starts = 0, 0, []

        async def one() -> None:
            nonlocal active, peak
            async with gate.slot("a.example"):
                starts.append(asyncio.get_running_loop().time())
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.02)
                active -= 1

        await asyncio.gather(*(one() for _ in range(6)))
        return peak, starts

    peak, starts = asyncio.run(run())
    gaps = [b - a for a, b in itertools.pairwise(sorted(starts))]
    assert peak <= 2
    assert min(gaps) >= 0.05 - 0.005  # delay * (1 - jitter)

    async def free() -> int:
        gate, active, peak = HostGate(3), 0, 0

        async def one() -> None:
            nonlocal active, peak
            async with gate.slot("b.example"):
                active += 1
                peak = max(peak, active)
                await asyncio.sleep(0.01)
                active -= 1

        await asyncio.gather(*(one() for _ in range(9)))
        return peak

    assert asyncio.run(free()) == 3


def _watch(site: Any, **kw: Any) -> Watch:
    values: dict[str, Any] = {
        "name": "fetch",
        "seeds": (site.url("/"),),
        "download_delay": 0,
        "obey_robots": True,
    }
    values.update(kw)
    return Watch(**values)


def test_crawl_fetches_images_in_its_workers_with_the_watchs_robots_and_delay(
    site: Any, db_url: str, make_photo: Any
) -> None:
    """A whole crawl: images fetched by the hash workers, counted as before; robots.txt obeyed
    for images; the watch's delay spaces the image fetches to one host."""
    site.routes["/robots.txt"] = _route(site, b"User-agent: *\nDisallow: /no/\n", 200, "text/plain")
    imgs = "".join(f'<img src="/i{i}.jpg">' for i in range(4))
    site.page("/", imgs + '<img src="/no/x.jpg"><img src="/gone.jpg"><img src="/text.jpg">')
    for i in range(4):
        site.image(f"/i{i}.jpg", make_photo(20 + i))
    site.image("/no/x.jpg", make_photo(30))
    site.routes["/text.jpg"] = _route(site, b"just text", 200, "text/plain")
    stats = run_crawl(
        _watch(site, download_delay=0.2), store_url=db_url, allow_private=True, hash_workers=2
    )
    assert stats.pages == 1 and stats.images_hashed == 4
    assert stats.images_failed == 2  # robots.txt forbids /no/x.jpg; /gone.jpg is 404
    assert stats.scrapy["childguard/images_robots_forbidden"] == 1
    assert stats.scrapy["childguard/images_not_an_image"] == 1
    assert stats.images == 5  # the text counts as an image that is not one, as with Scrapy
    assert stats.image_bytes == sum(len(make_photo(20 + i)) for i in range(4))
    assert site.count("/no/x.jpg") == 0
    starts = sorted(t for p, t in site.times if p.startswith(("/i", "/gone", "/text")))
    assert len(starts) == 6
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # DOWNLOAD_DELAY with Scrapy's ±50% jitter, as the server saw it: a loaded machine may run
    # one request's handler late and bunch it with the next, so the median gap and the whole
    # span are checked (fetches with no delay all start within a few milliseconds).
    assert statistics.median(gaps) >= 0.2 * 0.5 - 0.02, gaps
    assert starts[-1] - starts[0] >= 5 * 0.2 * 0.5 - 0.05, gaps
    again = run_crawl(_watch(site), store_url=db_url, allow_private=True, hash_workers=2)
    assert again.images_hashed == 0 and again.images_cached == 4  # known bytes: not re-hashed


def test_crawl_through_scrapy_when_asked_gives_the_same_counts(
    site: Any, db_url: str, make_photo: Any
) -> None:
    site.page("/", '<img src="/a.jpg"><img src="/b.jpg"><img src="/gone.jpg">')
    site.image("/a.jpg", make_photo(40))
    site.image("/b.jpg", make_photo(41))
    runs = [
        run_crawl(
            _watch(site),
            store_url=f"{db_url}{mode}",
            allow_private=True,
            hash_workers=0,
            settings_overrides={"CHILDGUARD_IMAGE_FETCH": mode},
        )
        for mode in ("workers", "scrapy")
    ]
    for stats in runs:
        assert (stats.images, stats.images_hashed, stats.images_failed) == (2, 2, 1)
        assert stats.image_bytes == len(make_photo(40)) + len(make_photo(41))
    assert site.count("/a.jpg") == 2  # once per crawl


def _self_signed(folder: Any) -> tuple[str, str]:
    """A certificate for localhost and 127.0.0.1 (and its key), made here, signed by itself."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)


def test_https_verifies_certificates_and_keeps_connections(
    tmp_path: Any, make_photo: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTPS the workers' client refuses a certificate nobody vouches for, and with a
    trusted one fetches, hashes and reuses its TLS connection (whose reads keep the deadline)."""
    import http.server
    import ssl

    from childguard.crawl import imagefetch

    photo = make_photo(7)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(photo)))
            self.end_headers()
            self.wfile.write(photo)

    cert, key = _self_signed(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    server.socket = served.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://localhost:{server.server_address[1]}/a.jpg"
    policy = _policy(allow_private=True)
    try:
        monkeypatch.setattr(imagefetch, "_TLS", None)  # the default context: system CAs only
        refused = _fetch(url, policy)
        assert refused.error and "CERTIFICATE_VERIFY_FAILED" in refused.error
        assert refused.hashes is None
        trusted = ssl.create_default_context(cafile=cert)
        monkeypatch.setattr(imagefetch, "_TLS", trusted)
        configure(policy)
        for _ in range(3):
            out = fetch_image(ImageJob(url, force=True))
            assert out.error is None and out.hashes is not None
            assert out.sha256 == hashlib.sha256(photo).hexdigest()
        client = imagefetch._client()
        assert client.connections_opened == 1  # one TLS connection for the three
    finally:
        server.shutdown()
        server.server_close()
