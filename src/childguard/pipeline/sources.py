# Owns the file sources of the pipeline: walking paths, folders and zip archives, and deciding
# which files found in a folder are media.
"""Source adapters for files: a path, a folder walked recursively, or the members of zip
archives, each as a `Source` that reads its bytes within the limits. Walk errors (symlink
loops, unreadable folders, broken links) are sources that carry an error; nothing here raises.
Bytes from elsewhere (a crawl, an upload, a hotline fetch) enter the pipeline as `Content`.

Files found in a folder or an archive are media when their name claims an image or video
suffix (`MEDIA_SUFFIXES`) or their first bytes sniff as one; the others (a `manifest.csv`, a
`readme.txt`) are skipped, not failed: `iter_files` reports each to `on_skip`. A file named
on the command line is always hashed, and a file that claims an image suffix but is not one
is an error record, as before.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from childguard.errors import MediaError
from childguard.log import get_logger
from childguard.media import DEFAULT_LIMITS, Content, Limits, read_bytes, sniff_content_type
from childguard.media_video import VIDEO_SUFFIXES

log = get_logger(__name__)
ARCHIVE_SEPARATOR = "!"
IMAGE_SUFFIXES = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".gif",
    ".webp",
    ".bmp",
    ".dib",
    ".tif",
    ".tiff",
    ".heic",
    ".heif",
    ".avif",
    ".mpo",
)
MEDIA_SUFFIXES = frozenset(IMAGE_SUFFIXES + VIDEO_SUFFIXES)
SNIFF_BYTES = 64
NOT_MEDIA = "not-media"

SkipCallback = Callable[[str, str], None]
"""Called with (path, reason) for each file a walk leaves out as not media."""


@dataclass(frozen=True)
class Source:
    """One item to hash: a file, a member of a zip archive, or a walk error.

    `path` is what records show (`archive.zip!member/name.jpg` for archive members).
    A source with `error` set is not read; it becomes an error record as is.
    """

    path: str
    file: Path | None = None
    member: str | None = None
    error: str | None = None

    def content(self, limits: Limits = DEFAULT_LIMITS) -> Content:
        """The item as `Content` (a plain file keeps its path for decoders that need one)."""
        data = self.read(limits)
        path = self.file if self.member is None else None
        return Content(data, origin=self.path, limits=limits, path=path)

    def read(self, limits: Limits = DEFAULT_LIMITS) -> bytes:
        """The item's bytes, within `limits.max_bytes`; raises MediaError."""
        if self.file is None:
            raise MediaError("unreadable", self.error or "nothing to read")
        if self.member is None:
            return read_bytes(self.file, limits)
        return _read_member(self.file, self.member, limits)


def _read_member(archive: Path, member: str, limits: Limits) -> bytes:
    try:
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(member)
            if info.file_size > limits.max_bytes:
                raise MediaError(
                    "too-large",
                    f"archive member is {info.file_size} bytes, over the limit of "
                    f"{limits.max_bytes}",
                )
            with zf.open(info) as fh:
                # The header's size may lie (zip bomb): never read past the limit.
                data = fh.read(limits.max_bytes + 1)
    except MediaError:
        raise
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError) as exc:
        raise MediaError("unreadable", f"cannot read archive member: {exc}") from exc
    if len(data) > limits.max_bytes:
        raise MediaError(
            "too-large", f"archive member expands past the limit of {limits.max_bytes}"
        )
    return data


def claims_media(name: str) -> bool:
    """Whether a file name ends in an image or video suffix (`MEDIA_SUFFIXES`)."""
    return Path(name).suffix.lower() in MEDIA_SUFFIXES


def is_media_head(head: bytes) -> bool:
    """Whether the first bytes of some content sniff as a photo or a video."""
    return sniff_content_type(head) is not None


def _file_head(path: Path) -> bytes | None:
    """The first `SNIFF_BYTES` of a file, or None when it cannot be read (then the file is
    hashed, so that the error shows in its record)."""
    try:
        with path.open("rb") as fh:
            return fh.read(SNIFF_BYTES)
    except OSError:
        return None


def iter_files(
    paths: Iterable[Path | str],
    *,
    include_archives: bool = False,
    on_skip: SkipCallback | None = None,
) -> Iterator[Source]:
    """Every media file under `paths` (recursively, in sorted order) as a `Source`.

    Symlinks are followed, but a symlink back into a folder being walked (a loop)
    is reported as an error source and not entered. Missing paths, unreadable
    folders and broken links are error sources too; nothing here raises. With
    `include_archives`, each `.zip` file yields its members instead of itself.
    A file found in a folder or an archive that neither claims a media suffix nor sniffs as
    media is left out and reported to `on_skip` (path, reason); a path given in `paths`
    itself is always yielded.
    """
    skip = on_skip or _ignore_skip
    for raw in paths:
        path = Path(raw)
        try:
            st = path.stat()
        except OSError as exc:
            reason = "broken-link" if path.is_symlink() else "unreadable"
            yield Source(path=str(path), error=f"{reason}: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, {(st.st_dev, st.st_ino)}, include_archives, skip)
        else:
            yield from _file_sources(path, include_archives, skip, named=True)


def _ignore_skip(path: str, reason: str) -> None:
    log.debug("skipped", path=path, reason=reason)


def _walk(
    folder: Path, ancestors: set[tuple[int, int]], include_archives: bool, skip: SkipCallback
) -> Iterator[Source]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        log.warning("unreadable folder", path=str(folder), error=exc.strerror or str(exc))
        yield Source(path=str(folder), error=f"unreadable-folder: {exc.strerror or exc}")
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            reason = "broken-link" if entry.is_symlink() else "unreadable"
            yield Source(path=str(path), error=f"{reason}: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                log.warning("symlink loop", path=str(path))
                yield Source(path=str(path), error="symlink-loop: folder links back to a parent")
                continue
            yield from _walk(path, ancestors | {key}, include_archives, skip)
        elif stat.S_ISREG(st.st_mode):
            yield from _file_sources(path, include_archives, skip, named=False)
        # Sockets, fifos and devices are not content: skipped silently.


def _file_sources(
    path: Path, include_archives: bool, skip: SkipCallback, *, named: bool
) -> Iterator[Source]:
    if not (include_archives and path.suffix.lower() == ".zip"):
        if not named and not claims_media(path.name):
            head = _file_head(path)
            if head is not None and not is_media_head(head):
                skip(str(path), f"{NOT_MEDIA}: neither its name nor its first bytes say media")
                return
        yield Source(path=str(path), file=path)
        return
    try:
        with zipfile.ZipFile(path) as zf:
            members = sorted(i.filename for i in zf.infolist() if not i.is_dir())
            kept = [m for m in members if claims_media(m) or _member_is_media(zf, m)]
    except (OSError, zipfile.BadZipFile) as exc:
        yield Source(path=str(path), error=f"bad-archive: {exc}")
        return
    for member in members:
        shown = f"{path}{ARCHIVE_SEPARATOR}{member}"
        if member in kept:
            yield Source(path=shown, file=path, member=member)
        else:
            skip(shown, f"{NOT_MEDIA}: neither its name nor its first bytes say media")


def _member_is_media(zf: zipfile.ZipFile, member: str) -> bool:
    """Whether an archive member sniffs as media; one that cannot be read is kept, so that its
    error shows in its record."""
    try:
        with zf.open(member) as fh:
            return is_media_head(fh.read(SNIFF_BYTES))
    except (OSError, zipfile.BadZipFile, KeyError, RuntimeError, NotImplementedError):
        return True
