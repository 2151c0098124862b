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

Every path named or found gets exactly one record: a FIFO, a device or a socket (or a link to
one, such as `/dev/zero`) is an error record (`not-a-file`) and is never opened for reading.
A file name that is not valid UTF-8 is shown with its undecodable bytes escaped
(`display_path`: `photo\\xff.jpg`), so records, reports and CSV/JSON output can always be
written; the file itself is still read by its real name.

Zip archives are read once, in order, in this process: every member is a source of its own
(two members with the same name are `a.zip!photo.jpg` and `a.zip!photo.jpg#2`), and zips
inside zips are opened down to `ArchiveBudget.max_depth`, within a total of
`ArchiveBudget.max_total_bytes` expanded bytes per archive named or found.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from childguard.errors import MediaError
from childguard.log import get_logger
from childguard.media import (
    DEFAULT_LIMITS,
    Content,
    Limits,
    read_bytes,
    sniff_content_type,
    special_file_kind,
)
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
class ArchiveBudget:
    """How far zip archives are opened: nesting depth (1: only the archive itself) and the
    expanded bytes read from one top-level archive, nested members included."""

    max_depth: int = 4
    max_total_bytes: int = 4 * 1024**3


DEFAULT_ARCHIVE_BUDGET = ArchiveBudget()
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def display_path(path: Path | str) -> str:
    """`path` as text that any UTF-8 writer accepts: bytes of the name that are not valid
    UTF-8 (kept by Python as surrogate escapes) are shown as `\\xNN`."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")
    return text


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
    # An archive member's bytes, read when the archive was walked (members are never looked
    # up again by name: names repeat, and a lookup per member is quadratic).
    data: bytes | None = None

    def content(self, limits: Limits = DEFAULT_LIMITS) -> Content:
        """The item as `Content` (a plain file keeps its path for decoders that need one)."""
        data = self.read(limits)
        path = self.file if self.member is None else None
        return Content(data, origin=self.path, limits=limits, path=path)

    def read(self, limits: Limits = DEFAULT_LIMITS) -> bytes:
        """The item's bytes, within `limits.max_bytes`; raises MediaError."""
        if self.data is not None:
            if len(self.data) > limits.max_bytes:
                raise MediaError("too-large", f"over the limit of {limits.max_bytes} bytes")
            return self.data
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
            yield Source(path=display_path(path), error=f"{reason}: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, {(st.st_dev, st.st_ino)}, include_archives, skip)
        elif stat.S_ISREG(st.st_mode):
            yield from _file_sources(path, include_archives, skip, named=True)
        else:
            yield _special_source(path, st.st_mode)


def _ignore_skip(path: str, reason: str) -> None:
    log.debug("skipped", path=path, reason=reason)


def _walk(
    folder: Path, ancestors: set[tuple[int, int]], include_archives: bool, skip: SkipCallback
) -> Iterator[Source]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        log.warning("unreadable folder", path=str(folder), error=exc.strerror or str(exc))
        yield Source(path=display_path(folder), error=f"unreadable-folder: {exc.strerror or exc}")
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            st = entry.stat(follow_symlinks=True)
        except OSError as exc:
            reason = "broken-link" if entry.is_symlink() else "unreadable"
            yield Source(path=display_path(path), error=f"{reason}: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                log.warning("symlink loop", path=str(path))
                yield Source(
                    path=display_path(path), error="symlink-loop: folder links back to a parent"
                )
                continue
            yield from _walk(path, ancestors | {key}, include_archives, skip)
        elif stat.S_ISREG(st.st_mode):
            yield from _file_sources(path, include_archives, skip, named=False)
        else:  # sockets, fifos and devices are not content, and are never opened
            yield _special_source(path, st.st_mode)


def _special_source(path: Path, mode: int) -> Source:
    kind = special_file_kind(mode) or "special file"
    return Source(path=display_path(path), error=f"not-a-file: {kind}, not a regular file")


def _file_sources(
    path: Path, include_archives: bool, skip: SkipCallback, *, named: bool
) -> Iterator[Source]:
    shown = display_path(path)
    if not (include_archives and path.suffix.lower() == ".zip"):
        if not named and not claims_media(path.name):
            head = _file_head(path)
            if head is not None and not is_media_head(head):
                skip(shown, f"{NOT_MEDIA}: neither its name nor its first bytes say media")
                return
        yield Source(path=shown, file=path)
        return
    try:
        with zipfile.ZipFile(path) as zf:
            budget = _Budget(DEFAULT_ARCHIVE_BUDGET, DEFAULT_LIMITS)
            # Members are read while the archive is open; the generator stays lazy across
            # members, so the pool holds only a few of them at a time.
            yield from _zip_sources(zf, path, shown, 1, budget, skip)
    except _ARCHIVE_ERRORS as exc:
        yield Source(path=shown, error=f"bad-archive: {exc}")


_ARCHIVE_ERRORS = (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError, ValueError)


class _Budget:
    """The expanded bytes left to read from one top-level archive."""

    def __init__(self, budget: ArchiveBudget, limits: Limits) -> None:
        self.budget = budget
        self.limits = limits
        self.left = budget.max_total_bytes


def _zip_sources(
    zf: zipfile.ZipFile,
    archive: Path,
    shown: str,
    depth: int,
    budget: _Budget,
    skip: SkipCallback,
) -> Iterator[Source]:
    """Each member of an open zip, in name order, once (repeated names are numbered)."""
    infos = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
    seen: dict[str, int] = {}
    for info in infos:
        count = seen.get(info.filename, 0) + 1
        seen[info.filename] = count
        name = display_path(info.filename)
        member_path = f"{shown}{ARCHIVE_SEPARATOR}{name}" + (f"#{count}" if count > 1 else "")
        is_zip = info.filename.lower().endswith(".zip")
        if not (is_zip or claims_media(info.filename)):
            try:
                with zf.open(info) as fh:
                    head = fh.read(SNIFF_BYTES)
            except _ARCHIVE_ERRORS:
                head = None  # unreadable: kept, so that its error shows in its record
            if head is not None and head.startswith(ZIP_MAGIC):
                is_zip = True
            elif head is not None and not is_media_head(head):
                skip(member_path, f"{NOT_MEDIA}: neither its name nor its first bytes say media")
                continue
        data, error = _member_bytes(zf, info, budget)
        if data is None:
            yield Source(path=member_path, file=archive, member=info.filename, error=error)
        elif is_zip:
            yield from _nested_sources(data, archive, member_path, depth, budget, skip)
        else:
            yield Source(path=member_path, file=archive, member=info.filename, data=data)


def _nested_sources(
    data: bytes, archive: Path, shown: str, depth: int, budget: _Budget, skip: SkipCallback
) -> Iterator[Source]:
    """The members of a zip found inside a zip, within the depth and the byte budget."""
    if depth >= budget.budget.max_depth:
        deepest = budget.budget.max_depth
        yield Source(path=shown, error=f"archive-too-deep: zips nested more than {deepest} deep")
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            yield from _zip_sources(inner, archive, shown, depth + 1, budget, skip)
    except _ARCHIVE_ERRORS as exc:
        yield Source(path=shown, error=f"bad-archive: {exc}")


def _member_bytes(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: _Budget
) -> tuple[bytes | None, str]:
    """A member's bytes within the per-file limit and the archive's total budget (or None and
    why not)."""
    limit = budget.limits.max_bytes
    if info.file_size > limit:
        return None, f"too-large: archive member is {info.file_size} bytes, over {limit}"
    cap = min(limit, budget.left)
    try:
        with zf.open(info) as fh:
            # The header's size may lie (zip bomb): never read past the limit or the budget.
            data = fh.read(cap + 1)
    except _ARCHIVE_ERRORS as exc:
        return None, f"unreadable: cannot read archive member: {exc}"
    if len(data) > cap:
        if cap < limit:
            total = budget.budget.max_total_bytes
            return None, f"archive-budget: the archive expands past {total} bytes in all"
        return None, f"too-large: archive member expands past the limit of {limit}"
    budget.left -= len(data)
    return data, ""
