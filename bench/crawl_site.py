# Owns the crawl benchmarks' and tests' generated sites and the small HTTP server that serves
# them from a process of its own.
"""Generated sites for crawling, and a lean HTTP/1.1 server that serves them in its own process.

- `StaticSite`: files held in memory (path -> bytes), served with an ETag so a re-crawl gets
  `304 Not Modified`. `gallery_site` builds the throughput benchmark's galleries of JPEGs.
- `LargeSite`: a generated site of listing pages (pagination), image pages (one photo each),
  and two endless link spaces: a calendar (`/calendar/YYYY/MM[/DD]`, prev/next month and every
  day) and a session-id trap (`/browse?sid=...&p=N`, a fresh id on every link). Every listing
  and image page also links into both, so a breadth-first crawl would spend its page limit in
  them. `useful_pages()` lists the pages a good crawl reaches first; the photos are tiny
  synthetic PNGs, so the site is quick to crawl.
- `serve_in_process(site)` starts the server in a forked process (keep-alive, one asyncio loop),
  so the crawler's CPU is not shared with the server's in the crawler's own process; it returns
  the base URL and a handle whose `stop()` ends it. `cpu_seconds()` reads what it used.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import multiprocessing
import os
import signal
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

Response = tuple[int, str, bytes]
NOT_FOUND: Response = (404, "text/plain", b"not found")


# -- sites --------------------------------------------------------------------------------
class StaticSite:
    """Files in memory, each served with a strong ETag (its sha1)."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files

    def get(self, path: str) -> Response:
        found = self.files.get(path.split("?", 1)[0])
        if found is None:
            return NOT_FOUND
        return (200, found[0], found[1])


def gallery_site(images: list[bytes], per_page: int = 20) -> StaticSite:
    """An index, gallery pages of `per_page` lazy-loaded images (`<img data-src>` inside a link
    to the full image) with rel=next pagination, and the images under /img/."""
    files: dict[str, tuple[str, bytes]] = {}
    for i, data in enumerate(images):
        files[f"/img/{i:05d}.jpg"] = ("image/jpeg", data)
    pages = (len(images) + per_page - 1) // per_page
    links = "".join(f'<a href="/g/{p}.html">{p}</a> ' for p in range(pages))
    index = f"<html><title>Demo gallery</title><body>{links}</body></html>"
    files["/index.html"] = ("text/html", index.encode())
    for p in range(pages):
        cells = "".join(
            f'<a href="/img/{i:05d}.jpg"><img data-src="/img/{i:05d}.jpg" alt=""></a>'
            for i in range(p * per_page, min(len(images), (p + 1) * per_page))
        )
        nav = f'<a href="/g/{p + 1}.html" rel="next">next</a>' if p + 1 < pages else ""
        html = f"<html><title>Page {p}</title><body>{cells}{nav}</body></html>"
        files[f"/g/{p}.html"] = ("text/html", html.encode())
    return StaticSite(files)


def gallery_site_from(folder: Path, per_page: int = 20) -> StaticSite:
    """`gallery_site` of the JPEGs in `folder` (in name order), read from disk: a server process
    builds its site this way, so the process that starts it never holds the images."""
    return gallery_site([p.read_bytes() for p in sorted(folder.glob("*.jpg"))], per_page)


def tiny_png(seed: int, side: int = 24) -> bytes:
    """A small synthetic PNG (a colour gradient that differs per seed)."""
    rows = []
    for y in range(side):
        row = bytearray([0])
        for x in range(side):
            row += bytes(((x * 11 + seed * 7) % 256, (y * 13 + seed * 3) % 256, (seed * 29) % 256))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 6)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


@dataclass
class LargeSite:
    """Listing pages 1..listings (`/list?page=N`), each linking `per_listing` image pages
    (`/photo/ID`, one photo `/img/ID.png`), the next and previous listing, a calendar month and
    a session-id trap link. Photo pages link back to their listing, a calendar day and a trap."""

    listings: int = 10
    per_listing: int = 20
    _png: dict[int, bytes] = field(default_factory=dict)

    @property
    def photos(self) -> int:
        return self.listings * self.per_listing

    def useful_pages(self) -> set[str]:
        """The index, every listing page and every image page (paths)."""
        pages = {"/"} | {f"/list?page={n}" for n in range(1, self.listings + 1)}
        return pages | {f"/photo/{i}" for i in range(self.photos)}

    @staticmethod
    def _html(title: str, body: str) -> bytes:
        return f"<html><head><title>{title}</title></head><body>{body}</body></html>".encode()

    @staticmethod
    def _sid(path: str) -> str:
        return hashlib.sha1(path.encode()).hexdigest()[:16]

    def _trap(self, path: str, n: int) -> str:
        return f'<a href="/browse?sid={self._sid(path)}&p={n}">more</a>'

    def get(self, path: str) -> Response:
        base, _, query = path.partition("?")
        args = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        if base == "/":
            body = '<a href="/list?page=1">photos</a> <a href="/calendar/2026/01">calendar</a>'
            return (200, "text/html", self._html("Home", body + self._trap(path, 1)))
        if base == "/list" and args.get("page", "").isdigit():
            n = int(args["page"])
            if not 1 <= n <= self.listings:
                return NOT_FOUND
            first = (n - 1) * self.per_listing
            cells = "".join(
                f'<a href="/photo/{i}">photo {i}</a> '
                for i in range(first, first + self.per_listing)
            )
            nav = f'<a href="/list?page={n - 1}">prev</a> ' if n > 1 else ""
            if n < self.listings:
                nav += f'<a href="/list?page={n + 1}" rel="next">next</a> '
            cal = f'<a href="/calendar/{2000 + n % 27}/{1 + n % 12:02d}">archive</a> '
            return (
                200,
                "text/html",
                self._html(f"List {n}", nav + cells + cal + self._trap(path, n)),
            )
        if base.startswith("/photo/") and base[7:].isdigit():
            i = int(base[7:])
            if i >= self.photos:
                return NOT_FOUND
            listing = i // self.per_listing + 1
            body = (
                f'<img src="/img/{i}.png" alt="photo {i}">'
                f'<a href="/list?page={listing}">back</a> '
                f'<a href="/calendar/2026/{1 + i % 12:02d}/{1 + i % 28:02d}">taken on</a> '
            )
            return (200, "text/html", self._html(f"Photo {i}", body + self._trap(path, i)))
        if base.startswith("/img/") and base.endswith(".png") and base[5:-4].isdigit():
            i = int(base[5:-4])
            if i >= self.photos:
                return NOT_FOUND
            if i not in self._png:
                self._png[i] = tiny_png(i)
            return (200, "image/png", self._png[i])
        if base.startswith("/calendar/"):
            return (200, "text/html", self._calendar(base))
        if base == "/browse":
            p = int(args.get("p", "0")) if args.get("p", "").isdigit() else 0
            links = "".join(self._trap(f"{path}#{k}", p + k) for k in range(1, 4))
            return (200, "text/html", self._html("Browse", links))
        return NOT_FOUND

    def _calendar(self, base: str) -> bytes:
        parts = [p for p in base.split("/") if p][1:]
        try:
            year, month = int(parts[0]), int(parts[1])
        except (IndexError, ValueError):
            year, month = 2026, 1
        prev_y, prev_m = (year, month - 1) if month > 1 else (year - 1, 12)
        next_y, next_m = (year, month + 1) if month < 12 else (year + 1, 1)
        days = "".join(
            f'<a href="/calendar/{year}/{month:02d}/{d:02d}">{d}</a> ' for d in range(1, 29)
        )
        body = (
            f'<a href="/calendar/{prev_y}/{prev_m:02d}">prev</a> '
            f'<a href="/calendar/{next_y}/{next_m:02d}">next</a> {days}'
        )
        return self._html(f"Calendar {year}-{month:02d}", body)


# -- the server ---------------------------------------------------------------------------
_REASONS = {200: b"OK", 304: b"Not Modified", 404: b"Not Found", 400: b"Bad Request"}


def _etag(body: bytes) -> bytes:
    return b'"' + hashlib.sha1(body).hexdigest().encode() + b'"'


async def _handle(
    get: Callable[[str], Response],
    etags: dict[str, bytes],
    log: io.TextIOBase | None,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) < 2:
                break
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            path = parts[1]
            if log is not None:
                log.write(path + "\n")
            status, ctype, body = get(path)
            etag = etags.get(path)
            if status == 200 and etag is None:
                etag = etags[path] = _etag(body)
            extra = b""
            if status == 200 and etag is not None:
                extra = b"ETag: " + etag + b"\r\n"
                if headers.get("if-none-match", "").encode() == etag:
                    status, body = 304, b""
            writer.write(
                b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n"
                % (status, _REASONS.get(status, b"OK"), ctype.encode(), len(body), extra)
            )
            if parts[0] != "HEAD" and body:
                writer.write(body)
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


Site = StaticSite | LargeSite


def _serve(site: Site | Callable[[], Site], conn: object, nice: int, log_path: str | None) -> None:
    if nice:
        os.nice(nice)
    if callable(site):  # a site built here, in the server's own process
        site = site()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115

    async def main() -> None:
        etags: dict[str, bytes] = {}
        server = await asyncio.start_server(
            lambda r, w: _handle(site.get, etags, log, r, w), "127.0.0.1", 0, backlog=512
        )
        conn.send(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        async with server:
            await server.serve_forever()

    asyncio.run(main())


class ServerProcess:
    def __init__(self, proc: multiprocessing.process.BaseProcess, base: str) -> None:
        self.proc = proc
        self.base = base

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(5)

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_in_process(
    site: Site | Callable[[], Site], *, nice: int = 0, log_path: Path | None = None
) -> ServerProcess:
    """Serve `site` on 127.0.0.1 (a free port) from a forked process of its own (`site` may
    be a function that builds it there); with `log_path`, the path of every request is appended
    there, one a line, as it arrives."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(
        target=_serve,
        args=(site, child, nice, str(log_path) if log_path else None),
        daemon=True,
        name="crawl-site",
    )
    proc.start()
    child.close()
    if not parent.poll(120):
        proc.terminate()
        raise RuntimeError("the site's server did not start")
    port = parent.recv()
    return ServerProcess(proc, f"http://127.0.0.1:{port}")
