# Owns connecting a scan to a Dask cluster: a LocalCluster here, or an existing scheduler.
"""The cluster a scan runs on, named as on the command line:

- `local`: a `distributed.LocalCluster` on this machine, one single-threaded worker process
  per core (or `workers`), started for the scan and stopped after it;
- `tcp://HOST:PORT`: the scheduler of an existing cluster. Its workers need childguard
  installed (the same version), and must read the scan's files at the same paths as the
  client (a shared mount of the evidence); the index snapshot is shipped to them unless
  they share the client's disk too (see `childguard.scale.snapshot`).

Two of Dask's defaults cost hashing dearly, and the local cluster turns them off
(`worker_config`): the nanny's `MALLOC_TRIM_THRESHOLD_=65536` (glibc then gives memory back
to the system after every large free, and PDQ's and the views' arrays are large: about twice
the CPU a photo) and the workers' statistical profiler (a fifth more). Start the workers of
a `tcp://` cluster with the same settings (docs/scale.md says how).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from childguard.errors import ChildguardError
from childguard.pipeline import default_workers

if TYPE_CHECKING:
    from distributed import Client

LOCAL = "local"
CONNECT_SECONDS = 30.0


class ClusterError(ChildguardError):
    """The cluster named cannot be used; the message says why."""


@dataclass(frozen=True)
class ClusterSpec:
    """A parsed `--cluster` value: `local`, or the address of a scheduler."""

    address: str | None  # None: a LocalCluster

    @property
    def local(self) -> bool:
        return self.address is None


def parse_cluster(value: str) -> ClusterSpec:
    """`local` or `tcp://HOST:PORT`; ClusterError saying what is accepted otherwise."""
    text = value.strip()
    if text == LOCAL:
        return ClusterSpec(None)
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or parts.path not in ("", "/"):
        raise ClusterError(
            f"--cluster {value!r}: give `local` or a scheduler address as tcp://HOST:PORT"
        )
    return ClusterSpec(f"tcp://{parts.netloc}")


def dashboard_link(client: Client) -> str | None:
    """The scheduler's dashboard address, when it serves one."""
    try:
        services = client.scheduler_info().get("services", {})
    except Exception:
        return None
    if "dashboard" not in services:
        return None
    link = client.dashboard_link
    return str(link) if link else None


def worker_config() -> dict[str, object]:
    """Dask settings for workers that hash: the nanny's environment without
    `MALLOC_TRIM_THRESHOLD_`, and no profiler (see the module docstring)."""
    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return {
        "distributed.nanny.pre-spawn-environ": environ,
        "distributed.worker.profile.enabled": False,
    }


@contextmanager
def connect(spec: ClusterSpec, *, workers: int | None = None) -> Iterator[Client]:
    """A client on the cluster `spec` names (a LocalCluster lives as long as the block)."""
    import dask
    from distributed import Client, LocalCluster

    if spec.address is not None:
        try:
            client = Client(spec.address, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {spec.address}: {exc}") from exc
        try:
            yield client
        finally:
            client.close()
        return
    # The dashboard needs bokeh; without it the cluster runs without one.
    dashboard = ":0" if importlib.util.find_spec("bokeh") is not None else None
    with (
        dask.config.set(worker_config()),
        LocalCluster(
            n_workers=workers or default_workers(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
