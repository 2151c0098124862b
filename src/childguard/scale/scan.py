# Owns the cluster scan: `childguard scan --cluster`, as a library call.
"""A scan (`childguard.scan.run_scan`) with its hashing and index search on a Dask cluster.

    from childguard.scale import cluster_scan, parse_cluster
    summary = cluster_scan(options, matcher, parse_cluster("local"))

The report is the one a local scan writes (the same files, records and order): this process
walks the inputs, opens the store, finishes matching and writes every file; the workers
only hash and search the index snapshot. `--resume` works as for a local scan: the client's
`hashes.jsonl` is the checkpoint, so a scan whose client died goes on from it, and tasks
lost with a worker are run again by the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from childguard.scale.cluster import ClusterSpec, connect, dashboard_link
from childguard.scale.runner import TASK_SIZE, ClusterRunner
from childguard.scan import ScanOptions, ScanSummary, run_scan

if TYPE_CHECKING:
    from distributed import Client

    from childguard.matcher import Matcher


def cluster_scan(
    options: ScanOptions,
    matcher: Matcher,
    cluster: ClusterSpec | Client,
    *,
    ship_index: bool | None = None,
    task_size: int = TASK_SIZE,
    workers: int | None = None,
    on_dashboard: Callable[[str], None] | None = None,
) -> ScanSummary:
    """Run the scan on `cluster` (a spec to connect to, or a connected client).

    `ship_index`: send the index snapshot to the workers (default: for a `tcp://` cluster,
    whose workers may not see this disk); `workers`: the size of a `local` cluster;
    `on_dashboard` is told the dashboard's address when the scheduler has one."""
    if not isinstance(cluster, ClusterSpec):
        return _run(options, matcher, cluster, bool(ship_index), task_size, on_dashboard)
    ship = (not cluster.local) if ship_index is None else ship_index
    with connect(cluster, workers=workers) as client:
        return _run(options, matcher, client, ship, task_size, on_dashboard)


def _run(
    options: ScanOptions,
    matcher: Matcher,
    client: Client,
    ship_index: bool,
    task_size: int,
    on_dashboard: Callable[[str], None] | None,
) -> ScanSummary:
    link = dashboard_link(client)
    if link and on_dashboard is not None:
        on_dashboard(link)
    runner = ClusterRunner(
        client, ship_index=ship_index, task_size=task_size, progress=options.progress
    )
    return run_scan(options, matcher, runner=runner)
