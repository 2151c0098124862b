"""Fixtures of the cluster scan tests: one real two-worker `LocalCluster` per module, the
evidence (see `helpers`), a local site serving one photo, and a SQLite store with the banks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from childguard.store.db import Store
from local_http import serving

from .helpers import Photo, fill_banks, make_evidence


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A client on a real LocalCluster: two single-threaded worker processes, set up as
    `childguard scan --cluster local` sets up its own."""
    import dask
    from distributed import Client, LocalCluster

    from childguard.scale.cluster import worker_config

    with (
        dask.config.set(worker_config()),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
        Client(local) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serving(Photo) as url:
        yield url


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory, site: str) -> dict[str, Path]:
    """`root`: the disk; `list`: a list file naming URLs, a folder and a missing file."""
    return make_evidence(tmp_path_factory.mktemp("evidence"), site)


@pytest.fixture(scope="module")
def banked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A SQLite store with the banks, for the module (the client alone opens it)."""
    from childguard.store import open_store

    path = tmp_path_factory.mktemp("store") / "store.db"
    store = open_store(f"sqlite:///{path}")
    fill_banks(store)
    try:
        yield store
    finally:
        store.close()
