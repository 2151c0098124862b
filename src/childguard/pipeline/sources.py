"""Source adapters for files: a path, a folder walked recursively, or the members of zip
archives, each as a `Source` that reads its bytes within the limits. Walk errors (symlink
loops, unreadable folders, broken links) are sources that carry an error; nothing here raises.
Bytes from elsewhere (a crawl, an upload, a hotline fetch) enter the pipeline as `Content`.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from childguard.errors import MediaError
from childguard.log import get_logger
from childguard.media import DEFAULT_LIMITS, Content, Limits, read_bytes

log = get_logger(__name__)
ARCHIVE_SEPARATOR = "!"


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


def iter_files(paths: Iterable[Path | str], *, include_archives: bool = False) -> Iterator[Source]:
    """Every file under `paths` (recursively, in sorted order) as a `Source`.

    Symlinks are followed, but a symlink back into a folder being walked (a loop)
    is reported as an error source and not entered. Missing paths, unreadable
    folders and broken links are error sources too; nothing here raises. With
    `include_archives`, each `.zip` file yields its members instead of itself.
    """
    for raw in paths:
        path = Path(raw)
        try:
            st = path.stat()
        except OSError as exc:
            reason = "broken-link" if path.is_symlink() else "unreadable"
            yield Source(path=str(path), error=f"{reason}: {exc.strerror or exc}")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, {(st.st_dev, st.st_ino)}, include_archives)
        else:
            yield from _file_sources(path, include_archives)


def _walk(
    folder: Path, ancestors: set[tuple[int, int]], include_archives: bool
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
            yield from _walk(path, ancestors | {key}, include_archives)
        elif stat.S_ISREG(st.st_mode):
            yield from _file_sources(path, include_archives)
        # Sockets, fifos and devices are not content: skipped silently.


def _file_sources(path: Path, include_archives: bool) -> Iterator[Source]:
    if not (include_archives and path.suffix.lower() == ".zip"):
        yield Source(path=str(path), file=path)
        return
    try:
        with zipfile.ZipFile(path) as zf:
            members = [i.filename for i in zf.infolist() if not i.is_dir()]
    except (OSError, zipfile.BadZipFile) as exc:
        yield Source(path=str(path), error=f"bad-archive: {exc}")
        return
    for member in sorted(members):
        yield Source(path=f"{path}{ARCHIVE_SEPARATOR}{member}", file=path, member=member)
