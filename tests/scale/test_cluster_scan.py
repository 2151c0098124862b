"""`scan --cluster` on a real two-worker LocalCluster: the same report as a local scan, each
worker loading the index snapshot once and never the store, a worker killed mid-scan, a client
killed mid-scan and resumed, and a `tcp://` scheduler through the CLI with the index shipped
to the workers."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from childguard.cli import EXIT_FOUND, EXIT_USAGE, app
from childguard.matcher import Matcher
from childguard.scale import ClusterError, ClusterRunner, cluster_scan, parse_cluster
from childguard.scale import snapshot as snapshot_module
from childguard.scan import ScanOptions, run_scan
from childguard.store.db import Store

from .helpers import SYNTHETIC, report_of, same

# The disk's media (5 photos, the synthetic ones, 2 zip members, truncated.jpg) and the
# list's 4 entries (a URL, a folder's photo, a missing file, a URL that answers 404).
FILES = 5 + SYNTHETIC + 2 + 1 + 4


def _options(evidence: dict[str, Path], out: Path, **kw: Any) -> ScanOptions:
    return ScanOptions(
        roots=[evidence["root"]],
        report_dir=out,
        workers=1,
        from_list=evidence["list"],
        allow_private=True,
        **kw,
    )


@pytest.fixture(scope="module")
def reference(
    banked: Store, evidence: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The report of a local scan (no cluster) of the evidence, against the module's store."""
    base = tmp_path_factory.mktemp("reference")
    run_scan(_options(evidence, base / "out"), Matcher(banked, index_base=base / "idx"))
    return report_of(base / "out")


def _loaded(client: Any, version: str) -> list[int]:
    """How many times each worker loaded the snapshot `version`."""
    loads = client.run(snapshot_module.loads)
    return [found.count(version) for found in loads.values()]


def test_cluster_report_is_the_local_report(
    banked: Store,
    cluster: Any,
    evidence: dict[str, Path],
    reference: dict[str, Any],
    tmp_path: Path,
) -> None:
    summary = reference["summary"]
    assert (summary["files"], summary["matched_files"], summary["suppressed_files"]) == (
        FILES,
        5,
        1,
    )
    assert summary["by_category"] == {"vics-UK:1": 3, "vics-UK:2": 1, "vics-UK:3": 1}
    assert summary["skipped_not_media"] == 2 and summary["failed"] == 3  # truncated, gone, 404
    runner = ClusterRunner(cluster, task_size=4)
    on_cluster = run_scan(
        _options(evidence, tmp_path / "cluster"),
        Matcher(banked, index_base=tmp_path / "idx", mmap=True),
        runner=runner,
    )
    assert on_cluster.files == FILES
    assert same(report_of(tmp_path / "cluster"), reference)
    assert runner.progress.done == FILES and runner.progress.tasks == -(-FILES // 4)
    # Each worker read the snapshot at most once (and some worker did), it was removed after
    # the scan, and no worker loaded the store's code.
    assert runner.snapshot is not None
    counts = _loaded(cluster, runner.snapshot.version)
    assert max(counts) == 1 and sum(counts) >= 1
    assert not runner.snapshot.folder.exists()
    store_loaded = cluster.run(lambda: "childguard.store.db" in sys.modules)
    assert set(store_loaded.values()) == {False}


def test_the_snapshot_is_hard_linked_from_the_saved_index(
    banked: Store, reference: dict[str, Any], tmp_path: Path
) -> None:
    from childguard.scale.snapshot import take_snapshot

    Matcher(banked, index_base=tmp_path / "idx").save()
    matcher = Matcher(banked, index_base=tmp_path / "idx", mmap=True)
    snap = take_snapshot(matcher)
    try:
        assert all(snap.linked.values()) and set(snap.linked) == set(matcher.indexes)
        saved = matcher.bank_index.path
        assert saved is not None
        one = next((snap.folder / "pdq").glob("*.npy"))
        assert one.stat().st_ino == (saved / "pdq" / one.name).stat().st_ino
        loaded = snapshot_module.load_index(snap.folder, "pdq")
        assert len(loaded) == len(matcher.bank_index.index) == 2
    finally:
        snap.close()
    assert not snap.folder.exists()


def test_a_worker_killed_mid_scan_costs_no_file(
    banked: Store,
    cluster: Any,
    evidence: dict[str, Path],
    reference: dict[str, Any],
    tmp_path: Path,
) -> None:
    pids = cluster.run(os.getpid)
    killed: list[str] = []

    def kill_a_busy_worker(record: Any, outcome: Any) -> None:
        if killed:
            return
        busy = [addr for addr, keys in cluster.processing().items() if keys and addr in pids]
        if busy:
            killed.append(busy[0])
            os.kill(pids[busy[0]], signal.SIGKILL)

    runner = ClusterRunner(cluster, task_size=2, window=6)
    run_scan(
        _options(evidence, tmp_path / "out"),
        Matcher(banked, index_base=tmp_path / "idx"),
        on_record=kill_a_busy_worker,
        runner=runner,
    )
    assert killed, "no worker was busy to kill"
    assert killed[0] not in cluster.scheduler_info()["workers"]
    hashes = (tmp_path / "out" / "hashes.jsonl").read_text().splitlines()
    paths = [json.loads(line)["path"] for line in hashes]
    assert len(paths) == len(set(paths)) == FILES
    assert same(report_of(tmp_path / "out"), reference)
    # The nanny restarts the killed worker; the next tests can do with one meanwhile.
    with contextlib.suppress(TimeoutError):
        cluster.wait_for_workers(2, timeout=30)


_CLIENT = """
import sys, time
from pathlib import Path
from distributed import Client
from childguard.matcher import Matcher
from childguard.scale import ClusterRunner
from childguard.scan import ScanOptions, run_scan
from childguard.store import open_store

address, db, root, listing, out, idx = sys.argv[1:]
with Client(address) as client:
    run_scan(
        ScanOptions(roots=[Path(root)], report_dir=Path(out), from_list=Path(listing),
                    allow_private=True),
        Matcher(open_store(db), index_base=Path(idx)),
        on_record=lambda record, outcome: time.sleep(0.08),
        runner=ClusterRunner(client, task_size=2),
    )
"""


def test_a_scan_whose_client_died_resumes_from_its_checkpoint(
    banked: Store,
    cluster: Any,
    evidence: dict[str, Path],
    reference: dict[str, Any],
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    db = banked.engine.url.render_as_string(hide_password=False)
    args = [cluster.scheduler.address, db, str(evidence["root"]), str(evidence["list"])]
    client = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_CLIENT), *args, str(out), str(tmp_path / "i")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and client.poll() is None:
            if (out / "matches.jsonl").exists() and (out / "hashes.jsonl").stat().st_size > 0:
                break
            time.sleep(0.02)
        assert client.poll() is None, client.stderr.read().decode() if client.stderr else ""
        client.send_signal(signal.SIGKILL)
        client.wait(10)
    finally:
        if client.poll() is None:
            client.kill()
    done_before = len((out / "hashes.jsonl").read_bytes().splitlines())
    assert 0 < done_before < FILES
    summary = cluster_scan(
        _options(evidence, out, resume=True),
        Matcher(banked, index_base=tmp_path / "idx"),
        cluster,
        task_size=4,
    )
    assert summary.skipped_resume >= done_before - 1  # a torn last line is done again
    resumed = report_of(out, resumed=True)
    paths = [json.loads(line)["path"] for line in resumed["hashes"].split("\n") if line]
    assert len(paths) == len(set(paths)) == FILES
    expected = dict(reference)
    expected["summary"] = {k: v for k, v in reference["summary"].items() if k != "skipped_resume"}
    expected["matches"] = {
        json.loads(line)["path"]: json.loads(line) for line in reference["matches"].splitlines()
    }
    assert same(resumed, expected)


def test_a_tcp_scheduler_through_the_cli_with_the_index_shipped(
    banked: Store,
    cluster: Any,
    evidence: dict[str, Path],
    reference: dict[str, Any],
    tmp_path: Path,
) -> None:
    address = cluster.scheduler.address
    assert address.startswith("tcp://")
    before = {addr: list(found) for addr, found in cluster.run(snapshot_module.loads).items()}
    done = CliRunner().invoke(
        app,
        [
            "scan",
            str(evidence["root"]),
            "--from-list",
            str(evidence["list"]),
            "--allow-private",
            "--report",
            str(tmp_path / "out"),
            "--db",
            banked.engine.url.render_as_string(hide_password=False),
            "--cluster",
            address,
            "--no-progress",
        ],
    )
    assert done.exit_code == EXIT_FOUND, done.output
    assert "matched files" in done.stdout
    # The same report as the local scan (whose index lived elsewhere: the CLI's is the
    # store's own, beside its file); each worker loaded the shipped copy once at most.
    assert same(report_of(tmp_path / "out"), reference)
    after = cluster.run(snapshot_module.loads)
    new = {a: [v for v in found if v not in before.get(a, [])] for a, found in after.items()}
    assert all(len(v) <= 1 for v in new.values()) and any(new.values())
    # The shipped files went with the plugin.
    left = cluster.run(
        lambda dask_worker: list(
            (Path(dask_worker.local_directory) / snapshot_module.SHIPPED).glob("*")
        )
    )
    assert all(not found for found in left.values())


def test_cluster_names_are_checked_before_anything_runs(tmp_path: Path) -> None:
    assert parse_cluster("local").local
    assert parse_cluster("tcp://10.0.0.5:8786").address == "tcp://10.0.0.5:8786"
    for bad in ("tcp://host", "http://h:1", "locale", "tcp://h:1/x"):
        with pytest.raises(ClusterError, match="tcp://HOST:PORT"):
            parse_cluster(bad)
    runner = CliRunner()
    base = ["--report", str(tmp_path / "r"), "--db", str(tmp_path / "x.db")]
    done = runner.invoke(app, ["scan", str(tmp_path), *base, "--cluster", "tcp://nowhere"])
    assert done.exit_code == EXIT_USAGE and "tcp://HOST:PORT" in done.stderr
    done = runner.invoke(app, ["scan", *base])
    assert done.exit_code == EXIT_USAGE and "--from-list" in done.stderr
    done = runner.invoke(app, ["scan", str(tmp_path), *base, "--ship-index"])
    assert done.exit_code == EXIT_USAGE and "--cluster" in done.stderr
