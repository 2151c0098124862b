"""The two local web sites of the demo, generated into a folder and served on 127.0.0.1.

- `AlbumSite`: the organisation's own album page. Each photo sits in a `<figure class="photo">`
  with its view counter (`<span class="views">1,234 views</span>`); `add_views` changes the
  counters between crawls (normal growth for most photos, a jump for one).
- `SharingSite`: a demo image-sharing site with galleries, pagination (`<link rel=next>` and
  "next" links), lazily loaded thumbnails (`data-src`) that link to photo pages, and full
  images (`<img src>`, `og:image`, a download link). It re-posts some album photos,
  transformed, among many unrelated photos. `remove` takes re-posts down the way a site does:
  the photo page, the image and the thumbnail answer 404 and the gallery shows a placeholder.

Both are plain files under a folder, served by a threaded `http.server` (which answers
conditional requests with 304, so a re-crawl skips images it has already hashed).
"""

from __future__ import annotations

import contextlib
import functools
import html
import io
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageOps

PAGE_SIZE = 12
THUMB_SIDE = 240
PUBLISH_SIDE = 1024
PLACEHOLDER = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw=="

# --------------------------------------------------------------------------- photos


def load_photo(path: Path, max_side: int = PUBLISH_SIDE) -> Image.Image:
    """Open a photo upright in RGB, reduced to at most `max_side` pixels on the long side."""
    with Image.open(path) as img:
        w, h = img.size
        scale = min(1.0, max_side / max(w, h))
        img.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))  # reduced-scale JPEG decode
        out = ImageOps.exif_transpose(img).convert("RGB")
    out.thumbnail((max_side, max_side), Image.Resampling.BICUBIC)
    return out


def jpeg_bytes(img: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def synthetic_photo(seed: int, size: tuple[int, int] = (800, 600)) -> Image.Image:
    """An unrelated 'photo' drawn from a seed: a smooth colour field with shapes and grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(0.5, 4.0), rng.uniform(0.5, 4.0), rng.uniform(0, 6.28)
        base[..., c] = 127 + 90 * np.sin(xx / w * fx * 6.28 + phase) * np.cos(yy / h * fy * 6.28)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(6, 14))):
        x0, y0 = int(rng.integers(-100, w)), int(rng.integers(-100, h))
        x1, y1 = x0 + int(rng.integers(40, 400)), y0 + int(rng.integers(40, 300))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        else:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
    grain = rng.normal(0, 6, (h, w, 3))
    return Image.fromarray(np.clip(np.asarray(img, np.float32) + grain, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------- transforms


def _crop(img: Image.Image, keep: float) -> Image.Image:
    w, h = img.size
    dx, dy = int(w * (1 - keep) / 2), int(h * (1 - keep) / 2)
    return img.crop((dx, dy, w - dx, h - dy))


def _watermark(img: Image.Image) -> Image.Image:
    out = img.copy()
    draw = ImageDraw.Draw(out, "RGBA")
    w, h = out.size
    band = max(24, h // 12)
    draw.rectangle((0, h - band, w, h), fill=(0, 0, 0, 140))
    draw.text(
        (10, h - band + band // 4), "picshare.test  -  share everything", fill=(255, 255, 255)
    )
    draw.text((w // 3, h // 3), "PICSHARE", fill=(255, 255, 255, 110))
    return out


def _resize(img: Image.Image, factor: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, int(w * factor)), max(1, int(h * factor))), Image.Resampling.BILINEAR)


Transform = Callable[[Image.Image], Image.Image]

# The ways the sharing site re-posts an album photo, in the order they are handed out.
TRANSFORMS: tuple[tuple[str, Transform], ...] = (
    ("resized to 50%", lambda im: _resize(im, 0.5)),
    ("cropped to the centre 80%", lambda im: _crop(im, 0.8)),
    ("watermarked", _watermark),
    ("resized to 35% and recompressed", lambda im: _resize(im, 0.35)),
    ("cropped to the centre 90% and watermarked", lambda im: _watermark(_crop(im, 0.9))),
    ("cropped to the centre 70%", lambda im: _crop(im, 0.7)),
    ("resized to 60% and watermarked", lambda im: _watermark(_resize(im, 0.6))),
    ("recompressed at JPEG quality 35", lambda im: im),
)
_LOW_QUALITY = {"resized to 35% and recompressed": 45, "recompressed at JPEG quality 35": 35}


# --------------------------------------------------------------------------- serving


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class LocalHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server for sites served on 127.0.0.1 (the demo, tests, benchmarks).

    The crawler opens many connections at once; the standard listen backlog of 5 drops
    SYNs, and the kernel's retries (1 + 2 + 4 + 8 + 16 s) stall a crawl for up to 30 s."""

    request_queue_size = 256
    daemon_threads = True


@dataclass
class ServedFolder:
    """A folder served over HTTP on 127.0.0.1 by a threaded server (stopped by `stop`)."""

    root: Path
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None

    def start(self) -> ServedFolder:
        handler = functools.partial(_QuietHandler, directory=str(self.root))
        self.server = LocalHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name=f"demo-site-{self.root.name}", daemon=True
        )
        self.thread.start()
        return self

    @property
    def port(self) -> int:
        if self.server is None:
            raise RuntimeError("the site is not started")
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _page(title: str, body: str, head: str = "") -> str:
    return (
        f"<!doctype html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"{head}</head>\n<body>\n{body}\n</body></html>\n"
    )


# --------------------------------------------------------------------------- the album


@dataclass
class AlbumPhoto:
    file_name: str
    path: Path  # the published file (what the organisation registers)
    views: int


@dataclass
class AlbumSite:
    """The organisation's own album page, with one view counter per photo."""

    root: Path
    title: str
    photos: list[AlbumPhoto]
    host: str = "album.scouts.test"
    served: ServedFolder | None = None

    @classmethod
    def build(cls, root: Path, sources: Sequence[Path], *, title: str, seed: int = 7) -> AlbumSite:
        rng = np.random.default_rng(seed)
        (root / "photos").mkdir(parents=True, exist_ok=True)
        photos: list[AlbumPhoto] = []
        for i, src in enumerate(sources, 1):
            name = f"camp-{i:02d}.jpg"
            path = root / "photos" / name
            path.write_bytes(jpeg_bytes(load_photo(src)))
            photos.append(AlbumPhoto(name, path, int(rng.integers(120, 600))))
        site = cls(root, title, photos)
        site.render()
        return site

    def url(self, path: str = "/") -> str:
        port = self.served.port if self.served else 0
        return f"http://{self.host}:{port}{path}"

    def photo_url(self, photo: AlbumPhoto) -> str:
        return self.url(f"/photos/{photo.file_name}")

    def render(self) -> None:
        figures = "\n".join(
            f"<figure class='photo'><img src='/photos/{p.file_name}' alt='{p.file_name}'>"
            f"<figcaption>{p.file_name} · <span class='views'>{p.views:,} views</span>"
            "</figcaption></figure>"
            for p in self.photos
        )
        body = f"<h1>{html.escape(self.title)}</h1>\n{figures}"
        (self.root / "index.html").write_text(_page(self.title, body))

    def add_views(self, increases: dict[str, int]) -> None:
        """Add views per file name (the rest keep theirs) and re-render the page."""
        for p in self.photos:
            p.views += increases.get(p.file_name, 0)
        self.render()

    def start(self) -> AlbumSite:
        self.served = ServedFolder(self.root).start()
        return self

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()


# --------------------------------------------------------------------------- the sharing site


@dataclass
class Post:
    """One photo on the sharing site. `source` is the album photo it re-posts (None: unrelated)."""

    id: str
    source: str | None = None
    transform: str | None = None
    removed: bool = False


@dataclass
class SharingSite:
    root: Path
    galleries: dict[str, list[Post]]
    host: str = "pics.share.test"
    served: ServedFolder | None = None
    posts: dict[str, Post] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        root: Path,
        album: Sequence[AlbumPhoto],
        *,
        reposts: int,
        unrelated: Sequence[Path] = (),
        synthetic: int = 24,
        galleries: int = 3,
        seed: int = 11,
    ) -> SharingSite:
        """Re-post the first `reposts` album photos (each with the next transform), among the
        `unrelated` photos and `synthetic` drawn ones, shuffled into `galleries` galleries."""
        if reposts > len(album):
            raise ValueError(f"cannot re-post {reposts} photos of an album of {len(album)}")
        rng = np.random.default_rng(seed)
        for sub in ("i", "t", "p"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        posts: list[tuple[Post, Image.Image, int]] = []
        for i, photo in enumerate(album[:reposts]):
            name, fn = TRANSFORMS[i % len(TRANSFORMS)]
            img = fn(load_photo(photo.path))
            posts.append((Post("", photo.file_name, name), img, _LOW_QUALITY.get(name, 85)))
        for path in unrelated:
            posts.append((Post(""), load_photo(path, 900), 85))
        for k in range(synthetic):
            posts.append((Post(""), synthetic_photo(seed * 1000 + k), 85))
        order = rng.permutation(len(posts))
        site = cls(root, {f"g{g + 1}": [] for g in range(galleries)})
        for n, idx in enumerate(order):
            post, img, quality = posts[int(idx)]
            post.id = f"{int(rng.integers(10_000, 99_999))}{n:03d}"
            (root / "i" / f"{post.id}.jpg").write_bytes(jpeg_bytes(img, quality))
            thumb = img.copy()
            thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
            (root / "t" / f"{post.id}.jpg").write_bytes(jpeg_bytes(thumb, 80))
            site.posts[post.id] = post
            site.galleries[f"g{n % galleries + 1}"].append(post)
        site.render()
        return site

    @property
    def reposts(self) -> list[Post]:
        return [p for p in self.posts.values() if p.source is not None]

    def url(self, path: str = "/") -> str:
        port = self.served.port if self.served else 0
        return f"http://{self.host}:{port}{path}"

    def render(self) -> None:
        """Write the home page, every gallery page and every live photo page."""
        links = "\n".join(
            f"<li><a href='/g/{g}/'>Gallery {g[1:]} ({len(ps)} photos)</a></li>"
            for g, ps in self.galleries.items()
        )
        self._write("index.html", _page("PicShare", f"<h1>PicShare</h1>\n<ul>{links}</ul>"))
        for g, posts in self.galleries.items():
            chunks = [posts[i : i + PAGE_SIZE] for i in range(0, len(posts), PAGE_SIZE)] or [[]]
            for n, chunk in enumerate(chunks, 1):
                self._write(self._gallery_file(g, n), self._gallery_page(g, n, len(chunks), chunk))
        for post in self.posts.values():
            if not post.removed:
                self._write(f"p/{post.id}/index.html", self._photo_page(post))

    @staticmethod
    def _gallery_path(g: str, n: int) -> str:
        return f"/g/{g}/" if n == 1 else f"/g/{g}/page/{n}/"

    def _gallery_file(self, g: str, n: int) -> str:
        return self._gallery_path(g, n).strip("/") + "/index.html"

    def _gallery_page(self, g: str, n: int, pages: int, posts: Sequence[Post]) -> str:
        cells = []
        for post in posts:
            if post.removed:
                cells.append("<div class='cell removed'>This photo was removed.</div>")
            else:
                cells.append(
                    f"<div class='cell'><a href='/p/{post.id}/'><img class='lazy' "
                    f"src='{PLACEHOLDER}' data-src='/t/{post.id}.jpg' alt=''></a></div>"
                )
        head, nav = "", []
        if n > 1:
            nav.append(f"<a class='prev' href='{self._gallery_path(g, n - 1)}'>previous</a>")
        if n < pages:
            nxt = self._gallery_path(g, n + 1)
            head = f"<link rel='next' href='{nxt}'>"
            nav.append(f"<a class='next' href='{nxt}'>next</a>")
        body = (
            f"<h1>Gallery {g[1:]}, page {n} of {pages}</h1>\n<div class='grid'>"
            + "\n".join(cells)
            + f"</div>\n<nav>{' '.join(nav)}</nav>\n<a href='/'>home</a>"
        )
        return _page(f"Gallery {g[1:]} · page {n} · PicShare", body, head)

    @staticmethod
    def _photo_page(post: Post) -> str:
        image = f"/i/{post.id}.jpg"
        head = f"<meta property='og:image' content='{image}'>"
        body = (
            f"<h1>Photo {post.id}</h1>\n<img src='{image}' alt='photo {post.id}'>\n"
            f"<p><a href='{image}'>download full size</a> · <a href='/'>home</a></p>"
        )
        return _page(f"Photo {post.id} · PicShare", body, head)

    def _write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def remove(self, post_ids: Sequence[str]) -> None:
        """Take posts down: their page, image and thumbnail answer 404 from now on."""
        for pid in post_ids:
            post = self.posts[pid]
            post.removed = True
            with contextlib.suppress(FileNotFoundError):
                (self.root / "i" / f"{pid}.jpg").unlink()
            with contextlib.suppress(FileNotFoundError):
                (self.root / "t" / f"{pid}.jpg").unlink()
            shutil.rmtree(self.root / "p" / pid, ignore_errors=True)
        self.render()

    def start(self) -> SharingSite:
        self.served = ServedFolder(self.root).start()
        return self

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()


@contextlib.contextmanager
def serving(*sites: AlbumSite | SharingSite) -> Iterator[None]:
    """Serve the sites for the duration of the block; always stop them."""
    try:
        for site in sites:
            site.start()
        yield
    finally:
        for site in sites:
            site.stop()
