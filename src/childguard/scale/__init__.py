"""Dask jobs for bulk hashing and matching: `childguard scan --cluster local|tcp://HOST:PORT`
(see `childguard.scale.scan`).

Names load on first use, so that a worker unpickling a task (`childguard.scale.tasks`) loads
neither the matcher nor the store."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from childguard.scale.cluster import ClusterError, ClusterSpec, connect, parse_cluster
    from childguard.scale.runner import ClusterRunner
    from childguard.scale.scan import cluster_scan

_WHERE = {
    "ClusterError": "childguard.scale.cluster",
    "ClusterSpec": "childguard.scale.cluster",
    "connect": "childguard.scale.cluster",
    "parse_cluster": "childguard.scale.cluster",
    "ClusterRunner": "childguard.scale.runner",
    "cluster_scan": "childguard.scale.scan",
}

__all__ = [
    "ClusterError",
    "ClusterRunner",
    "ClusterSpec",
    "cluster_scan",
    "connect",
    "parse_cluster",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
