# Owns the index snapshot a cluster scan ships to its workers, and each worker's loaded copy.
"""The copy of the derived near-signal indexes (PDQ, vPDQ) that the workers of a cluster scan
search, taken by the client from its matcher when the scan starts.

- `take_snapshot` puts every index of the matcher into a folder of its own: hard links to the
  saved files when the saved copy is the one the matcher holds (instant, and immune to a
  later save by the service, which replaces files by renaming), else the matcher's index
  saved there. The folder is named by a version that is new for every scan.
- The workers reach it in one of two ways (`IndexRef.path`): at the same path (the local
  cluster, or a shared file system), or shipped once to every worker by a worker plugin
  (`IndexShipment`) that writes the files into the worker's local directory, for a
  `tcp://` cluster whose workers see no common disk. Workers that join later get it too.
- `worker_indexes` loads a version once per worker process, memory-mapped where the index
  class can map its files, and keeps only the latest version. Nothing here opens the store.
"""

from __future__ import annotations

import fcntl
import inspect
import json
import os
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed import WorkerPlugin

from childguard.index.base import SignalIndex
from childguard.log import get_logger
from childguard.signals.registry import get_signal_type

if TYPE_CHECKING:  # the client's side only: workers never load the matcher nor the store
    from childguard.matcher import Matcher
    from childguard.matcher.bank_index import BankIndex

log = get_logger(__name__)
SNAPSHOTS = ".scan-snapshots"
SHIPPED = "childguard-index"


@dataclass(frozen=True)
class IndexRef:
    """Where a worker finds a snapshot: `path` when it sees the client's folder, else in its
    local directory, where `IndexShipment` wrote it."""

    version: str
    types: tuple[str, ...]
    path: str | None = None

    def folder(self) -> Path:
        if self.path is not None:
            return Path(self.path)
        from distributed import get_worker

        return Path(get_worker().local_directory) / SHIPPED / self.version


@dataclass
class Snapshot:
    """A snapshot on the client's disk; `close` removes it."""

    folder: Path
    version: str
    types: tuple[str, ...]
    linked: dict[str, bool]

    def ref(self, *, shared: bool) -> IndexRef:
        return IndexRef(self.version, self.types, str(self.folder) if shared else None)

    def files(self) -> dict[str, bytes]:
        """Every file of the snapshot by its relative path (what `IndexShipment` carries)."""
        return {
            p.relative_to(self.folder).as_posix(): p.read_bytes()
            for p in sorted(self.folder.rglob("*"))
            if p.is_file()
        }

    def nbytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*") if p.is_file())

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _snapshot_root(matcher: Matcher) -> Path | None:
    """Beside the saved indexes (so that hard links work), or None when none is saved."""
    for index in matcher.indexes.values():
        if index.path is not None:
            return index.path.parent / SNAPSHOTS
    return None


def _remove_stale(root: Path) -> None:
    """Snapshots left by clients that died (named `<pid>-<version>`)."""
    for old in root.glob("*-*"):
        pid = old.name.split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _saved_is_current(index: BankIndex) -> bool:
    from childguard.matcher.bank_index import MANIFEST

    if index.path is None:
        return False
    try:
        meta = json.loads((index.path / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return bool(
        meta.get("max_entry_id") == index.max_entry_id and meta.get("size") == len(index.index)
    )


def _link_tree(src: Path, dst: Path) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            target = dst / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)


def _link_saved(index: BankIndex, dest: Path) -> bool:
    """Hard-link the saved index into `dest` when it is the one held in memory."""
    from childguard.matcher.bank_index import LOCK

    if index.path is None or not _saved_is_current(index):
        return False
    try:
        with (index.path / LOCK).open("a") as lock:  # never half-way through a save
            fcntl.flock(lock, fcntl.LOCK_SH)
            if not _saved_is_current(index):
                return False
            _link_tree(index.path / index.signal_type, dest)
        return True
    except OSError as exc:  # another file system, or no hard links: save a copy instead
        log.info("scale.snapshot.copy", reason=str(exc))
        shutil.rmtree(dest, ignore_errors=True)
        return False


def take_snapshot(matcher: Matcher) -> Snapshot:
    """Every near index of `matcher`, as it holds them now, in a new snapshot folder."""
    version = uuid.uuid4().hex
    root = _snapshot_root(matcher)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale(root)
        folder = root / f"{os.getpid()}-{version}"
        folder.mkdir()
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{version}-"))
    linked: dict[str, bool] = {}
    for name, index in matcher.indexes.items():
        dest = folder / name
        linked[name] = _link_saved(index, dest)
        if not linked[name]:
            index.index.save(dest)
    return Snapshot(folder, version, tuple(matcher.indexes), linked)


class IndexShipment(WorkerPlugin):
    """A Dask worker plugin that writes a snapshot's files into each worker's local
    directory (on every worker now, and on each that joins later), and removes them when it
    is unregistered."""

    idempotent = False

    def __init__(self, version: str, files: dict[str, bytes]) -> None:
        self.version = version
        self.files = files
        self.name = f"childguard-index-{version}"
        self._folder: Path | None = None

    def setup(self, worker: Any) -> None:
        folder = Path(worker.local_directory) / SHIPPED / self.version
        for rel, data in self.files.items():
            target = (folder / rel).resolve()
            if folder.resolve() not in target.parents:
                raise ValueError(f"snapshot file {rel!r} is outside its folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.tmp")
            tmp.write_bytes(data)
            tmp.replace(target)
        self._folder = folder

    def teardown(self, worker: Any) -> None:
        forget(self.version)
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
        """Nothing to do on task transitions."""


# ------------------------------------------------------------------ the worker's side

_LOADED: dict[str, dict[str, SignalIndex]] = {}
_LOCK = threading.Lock()
LOADS: list[str] = []  # the versions this process loaded, in order (one per scan)


def load_index(folder: Path, signal_type: str) -> SignalIndex:
    """One saved index, memory-mapped read-only where its class can map its files."""
    found = get_signal_type(signal_type).index_class()
    if found is None:
        raise ValueError(f"{signal_type} signals are exact and have no index")
    if "mmap" in inspect.signature(found.load).parameters:
        return found.load(folder / signal_type, mmap=True)  # type: ignore[call-arg]
    return found.load(folder / signal_type)


def worker_indexes(ref: IndexRef) -> dict[str, SignalIndex]:
    """The snapshot's indexes, loaded once in this process (the previous version dropped)."""
    with _LOCK:
        found = _LOADED.get(ref.version)
        if found is None:
            _LOADED.clear()
            folder = ref.folder()
            found = {name: load_index(folder, name) for name in ref.types}
            _LOADED[ref.version] = found
            LOADS.append(ref.version)
        return found


def forget(version: str) -> None:
    """Drop a loaded version (its files are about to go)."""
    with _LOCK:
        _LOADED.pop(version, None)


def loads() -> list[str]:
    """The versions this worker process has loaded (for checks through `Client.run`)."""
    return list(LOADS)
