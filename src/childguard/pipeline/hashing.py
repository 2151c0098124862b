"""The batch hashing engine: content in, one `HashRecord` per item out.

`hash_bytes` / `hash_file` hash one item (exact hashes of the bytes, PDQ of the
decoded pixels through the fast path in `childguard.media`). `iter_files` walks
files, folders and, optionally, zip archives into `Source`s, reporting symlink
loops and unreadable folders as sources that carry an error. `hash_many` hashes
sources on a process pool over every core, with bounded work in flight, and
streams records back in input order. Bad input never raises here: it becomes a
record whose `error` says what is wrong, and the batch goes on.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from childguard.errors import MediaError
from childguard.log import get_logger
from childguard.media import DEFAULT_LIMITS, Limits, decode_image, read_bytes
from childguard.robust.query import QueryHash, query_hashes
from childguard.signals.exact import exact_hashes
from childguard.signals.pdq import pdq_dihedral_from_pixels, pdq_from_pixels

if TYPE_CHECKING:  # faiss and ORB load only when features are asked for
    from childguard.robust.query_features import QueryFeatures

log = get_logger(__name__)

# Column order of every output (JSON Lines keys, CSV header).
RECORD_FIELDS = (
    "path",
    "size",
    "md5",
    "sha1",
    "sha256",
    "pdq",
    "pdq_quality",
    "width",
    "height",
    "format",
    "error",
)
ARCHIVE_SEPARATOR = "!"


@dataclass
class HashRecord:
    """What childguard knows about one item. `error` is None when hashing succeeded.

    Exact hashes are filled whenever the bytes could be read, even if the image
    could not be decoded (the bytes can still be matched exactly).
    """

    path: str
    size: int | None = None
    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    pdq_quality: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    error: str | None = None
    pdq_dihedral: list[str] | None = field(default=None)
    # With robust=True: every PDQ hash to search for this item (original first), see
    # childguard.robust.query. Not part of the hash output formats.
    queries: list[QueryHash] | None = field(default=None, repr=False)
    # With features=True: the query's ORB keypoints and descriptors (compact arrays, no
    # pixels) for verification against protected photos, see childguard.matcher.protected.
    features: QueryFeatures | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self, *, dihedral: bool | None = None) -> dict[str, Any]:
        """The record as a plain dict in `RECORD_FIELDS` order, plus `pdq_dihedral`
        when `dihedral` is true (default: when the record has it)."""
        data = asdict(self)
        out = {name: data[name] for name in RECORD_FIELDS}
        if dihedral or (dihedral is None and self.pdq_dihedral is not None):
            out["pdq_dihedral"] = self.pdq_dihedral
        return out


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


def hash_bytes(
    data: bytes,
    *,
    path: str = "",
    dihedral: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    robust: bool = False,
    features: bool = False,
) -> HashRecord:
    """Hash one item's bytes. Never raises for bad content: the record carries `error`.

    With `robust`, `record.queries` also gets the robust query variants (borders removed,
    regions of screenshots and collages, dihedral views) for the matcher. With `features`
    (implies `robust`), `record.features` gets the ORB keypoints and descriptors that
    protected-photo verification needs (about 20-30 ms more per image: ask for them only
    when `Matcher.needs_features` says so)."""
    record = HashRecord(path=path, size=len(data))
    if data and len(data) <= limits.max_bytes:
        hashes = exact_hashes(data)
        record.md5, record.sha1, record.sha256 = hashes["md5"], hashes["sha1"], hashes["sha256"]
    try:
        image = decode_image(data, limits, fast=True)
        if dihedral:
            variants, quality = pdq_dihedral_from_pixels(image.pixels)
            record.pdq, record.pdq_dihedral = variants[0], variants
        else:
            record.pdq, quality = pdq_from_pixels(image.pixels)
        if robust or features:
            record.queries = query_hashes(image.pixels)
        if features:
            record.features = compact_features(image.pixels, record.queries or [])
    except MediaError as exc:
        record.error = str(exc)
        return record
    record.pdq_quality = quality
    record.width, record.height, record.format = image.width, image.height, image.format
    return record


def compact_features(pixels: Any, hashes: list[QueryHash]) -> QueryFeatures:
    """The query's ORB features computed now, without the pixels (small and picklable; the
    grey copy of at most 256 px that the aligned check warps travels with them).

    The features of the mirrored query (flipped copies) and of its photo-like regions
    (screenshots, collages) are computed here too, while the pixels are at hand, so the
    matcher can run the same verification passes as the robustness benchmark."""
    from childguard.robust.query_features import QueryFeatures, query_features

    def without_pixels(q: QueryFeatures, keep: list[QueryHash]) -> QueryFeatures:
        return QueryFeatures(keep, keypoints=q.keypoints, descriptors=q.descriptors, check=q.check)

    full = query_features(pixels, hashes)
    mirror = full.mirrored()
    return QueryFeatures(
        hashes,
        keypoints=full.keypoints,
        descriptors=full.descriptors,
        mirror=without_pixels(mirror, []) if mirror is not None else None,
        regions=[without_pixels(r, []) for r in full.regions()],
        check=full.check,
    )


def hash_file(
    path: Path | str,
    *,
    dihedral: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    robust: bool = False,
    features: bool = False,
) -> HashRecord:
    """Hash one file. Unreadable or oversize files give a record with `error`."""
    return hash_source(
        Source(path=str(path), file=Path(path)),
        dihedral=dihedral,
        limits=limits,
        robust=robust,
        features=features,
    )


def hash_source(
    source: Source,
    *,
    dihedral: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    robust: bool = False,
    features: bool = False,
) -> HashRecord:
    """Hash one `Source` (a file, an archive member, or a walk error)."""
    if source.error is not None:
        return HashRecord(path=source.path, error=source.error)
    try:
        data = source.read(limits)
    except MediaError as exc:
        return HashRecord(path=source.path, error=str(exc))
    return hash_bytes(
        data, path=source.path, dihedral=dihedral, limits=limits, robust=robust, features=features
    )


# --- walking -----------------------------------------------------------------------------


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


# --- the pool ----------------------------------------------------------------------------


def default_workers() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def hash_many(
    sources: Iterable[Source],
    *,
    workers: int | None = None,
    dihedral: bool = False,
    progress: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    total: int | None = None,
    robust: bool = False,
    features: bool = False,
) -> Iterator[HashRecord]:
    """Hash `sources` on a process pool and stream records back in input order.

    `workers` defaults to every core; 1 hashes in this process. At most a few
    items per worker are in flight, so memory stays bounded for any input size.
    A worker that dies (a decoder crash) costs only the item it was hashing: that
    item gets an error record and the pool is restarted for the rest.
    With `progress`, a Rich progress bar is drawn on stderr (`total` sizes it;
    it defaults to `len(sources)` when sources is a sequence).
    """
    n_workers = workers or default_workers()
    if total is None and hasattr(sources, "__len__"):
        total = len(sources)  # type: ignore[arg-type]
    records = (
        _hash_serial(sources, dihedral, limits, robust, features)
        if n_workers == 1
        else _hash_pool(sources, n_workers, dihedral, limits, robust, features)
    )
    if not progress:
        yield from records
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("hashing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeRemainingColumn(),
    )
    from rich.console import Console

    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("hash", total=total, failed=0)
        failed = 0
        for record in records:
            failed += record.error is not None
            bar.update(task, advance=1, failed=failed)
            yield record


def _hash_serial(
    sources: Iterable[Source],
    dihedral: bool,
    limits: Limits,
    robust: bool = False,
    features: bool = False,
) -> Iterator[HashRecord]:
    for source in sources:
        yield hash_source(
            source, dihedral=dihedral, limits=limits, robust=robust, features=features
        )


def _hash_pool(
    sources: Iterable[Source],
    workers: int,
    dihedral: bool,
    limits: Limits,
    robust: bool = False,
    features: bool = False,
) -> Iterator[HashRecord]:
    options: dict[str, Any] = {
        "dihedral": dihedral,
        "limits": limits,
        "robust": robust,
        "features": features,
    }
    max_in_flight = workers * 4
    pending: deque[tuple[Source, Future[HashRecord]]] = deque()
    it = iter(sources)
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < max_in_flight:
                source = next(it, None)
                if source is None:
                    exhausted = True
                    break
                if source.error is not None:  # nothing to compute: skip the round trip
                    done: Future[HashRecord] = Future()
                    done.set_result(HashRecord(path=source.path, error=source.error))
                    pending.append((source, done))
                else:
                    job = pool.submit(hash_source, source, **options)
                    pending.append((source, job))
            if not pending:
                return
            source, future = pending.popleft()
            try:
                yield future.result()
            except BrokenProcessPool:
                # Some in-flight item killed its worker; retry the head alone to find out.
                yield _hash_isolated(source, options)
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=workers)
                retry = [s for s, _ in pending]
                pending.clear()
                for s in retry:
                    pending.append((s, pool.submit(hash_source, s, **options)))
            except Exception as exc:  # a bug, not bad input: keep the batch going, say so
                log.error("hashing failed", path=source.path, error=repr(exc))
                yield HashRecord(path=source.path, error=f"internal-error: {exc!r}")
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _hash_isolated(source: Source, options: dict[str, Any]) -> HashRecord:
    """Hash one source in a fresh single-worker pool; a crash there is that item's fault."""
    with ProcessPoolExecutor(max_workers=1) as solo:
        try:
            job = solo.submit(hash_source, source, **options)
            return job.result()
        except BrokenProcessPool:
            log.error("hashing worker died", path=source.path)
            return HashRecord(path=source.path, error="worker-crashed: the decoder process died")
