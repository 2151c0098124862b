# Owns the service API benchmark (section `service-api` of docs/benchmarks.md).
"""The service over HTTP against the in-process matcher, on a bank of N random PDQ hashes.

- Bulk adds: the N hashes loaded through the bulk import path (`banks.import_records`, what
  `childguard bank import` and the import jobs run), and a sample added through the API
  (`POST /v1/banks/<name>/entries`, 10,000 a call); signals per second.
- The same-run baseline: `Matcher.match_hash` in this process, one thread, over the query mix
  (half within 1-20 bits of a bank entry, half uniform random, as the HMA figures were taken).
- `childguard serve` started as a subprocess on a free port, with 1 worker and then 2:
  lookups per second over HTTP through `GET /m/lookup?signal_type=pdq&signal=...` and
  `GET /v1/match?signal_type=pdq&value=...`, from several client threads on kept-alive
  connections (a small raw HTTP/1.1 client, so the load generator takes little of the CPU the
  server needs), p50 and p99 latency, and each as a ratio to the baseline.
- RSS (and PSS, where mapped pages shared by workers count once) of each worker before and
  after `--lookups` lookups; bytes of RAM per hash: a worker's RSS over an empty store's
  worker, divided by N.
- Time from adding a signal through the API (`POST /c/bank/<name>/signal`) until every worker
  matches it (median of several), each worker reached on its own connection.
- `POST /h/hash` of a 4 MP JPEG (a smooth synthetic image), median ms, against hashing the
  same bytes in process.

    python bench/bench_api.py                      # 1,000,000 hashes; writes docs/benchmarks.md
    python bench/bench_api.py --hashes 100000 --no-record
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for `bench._common` when run as a script

from bench._common import machine_info, record_section  # noqa: E402
from childguard.accounts import create_key  # noqa: E402
from childguard.banks import EntryRecord, create_bank, import_records  # noqa: E402
from childguard.matcher import Matcher  # noqa: E402
from childguard.media import Content  # noqa: E402
from childguard.pipeline import Pipeline  # noqa: E402
from childguard.store import open_store  # noqa: E402

BANK = "BENCH"
WORKER_HEADER = "x-childguard-worker"
API_BATCH = 10_000

# The goals for the service at 1M hashes.
GOAL_LOOKUPS_PER_WORKER = 1_500
GOAL_BYTES_PER_HASH = 100
GOAL_MATCHABLE_S = 1.0
GOAL_BULK_ADDS = 50_000
GOAL_HASH_MS = 60


# ---------------------------------------------------------------------------- data


def random_hashes(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def hex_rows(rows: np.ndarray) -> list[str]:
    flat = rows.tobytes().hex()
    return [flat[i : i + 64] for i in range(0, len(flat), 64)]


def flip_bits(rows: np.ndarray, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    out = rows.copy()
    for row in out:
        for bit in rng.choice(256, int(rng.integers(lo, hi + 1)), replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return out


def query_mix(bank: np.ndarray, n: int, rng: np.random.Generator) -> list[str]:
    """Half within 1-20 bits of a bank entry, half uniform random, shuffled."""
    near = flip_bits(bank[rng.integers(0, bank.shape[0], n // 2)], 1, 20, rng)
    mixed = np.concatenate([near, random_hashes(n - n // 2, rng)])
    return hex_rows(mixed[rng.permutation(n)])


def jpeg_4mp(seed: int = 3) -> bytes:
    """A smooth synthetic 2309x1732 (4.0 MP) JPEG."""
    from PIL import Image

    base = np.random.default_rng(seed).integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((2309, 1732), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


# ---------------------------------------------------------------------------- measures


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@dataclass
class Rate:
    """Lookups per second with p50 and p99 latency (ms)."""

    per_second: float
    p50_ms: float
    p99_ms: float
    errors: int = 0

    def cells(self, baseline: Rate) -> str:
        return (
            f"{self.per_second:,.0f} | {self.p50_ms:.2f} | {self.p99_ms:.2f} "
            f"| {self.per_second / baseline.per_second:.2f}x"
        )


def in_process(matcher: Matcher, queries: list[str], n: int) -> Rate:
    latencies: list[float] = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        matcher.match_hash("pdq", queries[i % len(queries)])
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return Rate(n / elapsed, percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3)


class RawClient:
    """One kept-alive HTTP/1.1 connection sending prepared GET requests; reads each answer by
    its Content-Length. Small enough to leave the CPU to the server."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def get(self, request: bytes) -> tuple[int, bytes]:
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            self.buffer = rest
            self._read()
            rest = self.buffer
        self.buffer = rest[length:]
        return int(head[9:12]), rest[:length]

    def _read(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def request_bytes(path: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n\r\n"
    ).encode()


def over_http(port: int, requests: list[bytes], n: int, clients: int) -> Rate:
    """`n` requests from `clients` threads, each on its own connection, cycling `requests`."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    per_client = n // clients

    def run(c: int) -> None:
        client = RawClient(port)
        try:
            offset = c * 7919
            for i in range(per_client):
                t0 = time.perf_counter()
                status, _ = client.get(requests[(offset + i) % len(requests)])
                latencies[c].append(time.perf_counter() - t0)
                if status != 200:
                    errors[c] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    flat = [x for part in latencies for x in part]
    return Rate(
        len(flat) / elapsed, percentile(flat, 50) * 1e3, percentile(flat, 99) * 1e3, sum(errors)
    )


def memory_kb(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of a process in kB."""
    rss = pss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pss = rss
    return rss, pss


# ---------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    port: int
    proc: subprocess.Popen[bytes]
    workers: dict[int, httpx.Client] = field(default_factory=dict)  # pid -> its connection

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serve(
    db_url: str, index: Path, home: Path, workers: int, log_level: str = "INFO"
) -> Iterator[Served]:
    """`childguard serve --workers N` as a subprocess; yields once every worker is ready,
    with one kept-alive client on each (told apart by their `X-Childguard-Worker`)."""
    port = free_port()
    env = {
        **os.environ,
        "CHILDGUARD_HOME": str(home),
        "CHILDGUARD_DB": db_url,
        "CHILDGUARD_INDEX_DIR": str(index),
        "CHILDGUARD_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        # The bench's own load is neither a flood nor abuse: no per-key rate limit, and no
        # match cap (half the queries match one bank).
        "CHILDGUARD_RATE_LIMIT_PER_KEY": "",
        "CHILDGUARD_BANK_MATCH_CAP_PER_MINUTE": "0",
        "CHILDGUARD_LOG_LEVEL": log_level,
    }
    cli = Path(sys.executable).with_name("childguard")
    proc = subprocess.Popen(
        [str(cli), "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    served = Served(port, proc)
    try:
        deadline = time.monotonic() + 600
        while len(served.workers) < workers:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"childguard serve did not start {workers} ready workers")
            client = httpx.Client(base_url=served.base, timeout=60)
            try:
                answer = client.get("/status")
                while answer.status_code != 200 and time.monotonic() < deadline:
                    time.sleep(0.1)
                    answer = client.get("/status")
            except httpx.TransportError:
                client.close()
                time.sleep(0.2)
                continue
            pid = int(answer.headers[WORKER_HEADER])
            if answer.status_code == 200 and pid not in served.workers:
                served.workers[pid] = client
            else:
                client.close()
        yield served
    finally:
        for client in served.workers.values():
            client.close()
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def time_to_match(served: Served, curate: str, match: str, rng: np.random.Generator) -> float:
    """Seconds from a `POST /c/bank/<name>/signal` answer until every worker matches it."""
    value = hex_rows(random_hashes(1, rng))[0]
    params = {"signal_type": "pdq", "signal": value}
    auth = {"Authorization": f"Bearer {match}"}
    added = httpx.post(
        f"{served.base}/c/bank/{BANK}/signal",
        json={"pdq": value},
        headers={"Authorization": f"Bearer {curate}"},
        timeout=60,
    )
    added.raise_for_status()
    started = time.monotonic()
    waiting = set(served.workers)
    while waiting:
        for pid in list(waiting):
            found = served.workers[pid].get("/m/lookup", params=params, headers=auth)
            if BANK in found.json():
                waiting.discard(pid)
        if time.monotonic() - started > 30:
            return float("inf")
        time.sleep(0.005)
    return time.monotonic() - started


def api_bulk_adds(base: str, curate: str, n: int, rng: np.random.Generator) -> float:
    """Signals per second through `POST /v1/banks/<name>/entries`, `API_BATCH` a call."""
    values = hex_rows(random_hashes(n, rng))
    headers = {"Authorization": f"Bearer {curate}"}
    started = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        for start in range(0, n, API_BATCH):
            batch = values[start : start + API_BATCH]
            body = {"entries": [{"signal_type": "pdq", "value": v} for v in batch]}
            answer = client.post(
                f"/v1/banks/{BANK}/entries",
                json=body,
                headers={"Idempotency-Key": secrets.token_hex(8)},
            )
            answer.raise_for_status()
    return n / (time.perf_counter() - started)


def hash_4mp(base: str, key: str, photo: bytes, repeats: int) -> float:
    times: list[float] = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            answer = client.post("/h/hash", files={"photo": ("p.jpg", photo, "image/jpeg")})
            times.append(time.perf_counter() - t0)
            answer.raise_for_status()
    return statistics.median(times[1:]) * 1e3


def hash_in_process(photo: bytes, repeats: int) -> float:
    pipeline = Pipeline(None, robust=False)
    times: list[float] = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        record, _ = pipeline.process(Content(photo, origin="bench"))
        times.append(time.perf_counter() - t0)
        assert record.error is None, record.error
    return statistics.median(times[1:]) * 1e3


# ---------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> str:
    rng = np.random.default_rng(14)
    n = args.hashes
    machine = machine_info()
    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        db_url = f"sqlite:///{work / 'bench.db'}"
        index = work / "index"
        store = open_store(db_url)
        curate = create_key(store, "curate", actor="bench")[1]
        match = create_key(store, "match", actor="bench")[1]
        hasher = create_key(store, "hash", actor="bench")[1]

        # A worker's footprint with no hashes, to tell the index's RAM from the process's.
        with serve(db_url, index, work, 1, args.log_level) as empty:
            empty_rss, empty_pss = memory_kb(next(iter(empty.workers)))

        bank = random_hashes(n, rng)
        values = hex_rows(bank)
        create_bank(store, BANK, "known-abuse", actor="bench")
        t0 = time.perf_counter()
        import_records(
            store,
            BANK,
            (EntryRecord("pdq", v) for v in values),
            actor="bench",
            prevalidated=True,
        )
        bulk_rate = n / (time.perf_counter() - t0)
        del values
        # Fresh queries for each figure (the baseline's and each route's), so every figure
        # starts with the matcher's entry cache cold, as real traffic would find it.
        pools = [query_mix(bank, args.measure, rng) for _ in range(3)]
        del bank

        t0 = time.perf_counter()
        matcher = Matcher(store, index_base=index)
        build_s = time.perf_counter() - t0
        baseline = in_process(matcher, pools[0], args.measure)
        sample = pools[0][:2000]
        matched = 100 * sum(1 for q in sample if matcher.match_hash("pdq", q).matched) / len(sample)
        matcher.save()
        del matcher
        say(
            f"{n:,} hashes: bulk import {bulk_rate:,.0f}/s; index built in {build_s:.1f} s; "
            f"in-process {baseline.per_second:,.0f} lookups/s "
            f"(p50 {baseline.p50_ms:.3f} ms, p99 {baseline.p99_ms:.3f} ms); "
            f"{matched:.0f}% of the queries match"
        )

        hma = [request_bytes(f"/m/lookup?signal_type=pdq&signal={q}", match) for q in pools[1]]
        ours = [request_bytes(f"/v1/match?signal_type=pdq&value={q}", match) for q in pools[2]]
        warm = [request_bytes("/m/index/status", match)]
        rows: list[tuple[int, str, Rate]] = []
        memory: dict[int, list[tuple[int, int, int, int]]] = {}
        to_match: dict[int, list[float]] = {}
        restart_s: dict[int, float] = {}
        api_adds = hash_ms = 0.0
        for workers in args.workers:
            t0 = time.perf_counter()
            with serve(db_url, index, work, workers, args.log_level) as served:
                restart_s[workers] = time.perf_counter() - t0
                clients = args.clients_per_worker * workers
                over_http(served.port, warm, 100 * clients, clients)  # connections, code paths
                for route, prepared in (("GET /m/lookup", hma), ("GET /v1/match", ours)):
                    rate = over_http(served.port, prepared, args.measure, clients)
                    rows.append((workers, route, rate))
                    say(
                        f"{workers} worker(s), {route}: {rate.per_second:,.0f}/s "
                        f"(p50 {rate.p50_ms:.2f} ms, p99 {rate.p99_ms:.2f} ms, "
                        f"{rate.errors} not 200)"
                    )
                # After the measured lookups (the mapped index paged in), and after --lookups
                # more: what the worker holds once warm, and whether it keeps growing.
                before = {pid: memory_kb(pid) for pid in served.workers}
                over_http(served.port, hma + ours, args.lookups, clients)
                after = {pid: memory_kb(pid) for pid in served.workers}
                memory[workers] = [(*before[p], *after[p]) for p in served.workers]
                to_match[workers] = [
                    time_to_match(served, curate, match, rng) for _ in range(args.adds)
                ]
                say(
                    f"{workers} worker(s): RSS/PSS MB before and after {args.lookups:,} "
                    f"lookups: {[tuple(round(v / 1024) for v in m) for m in memory[workers]]}; "
                    f"matchable on every worker after {sorted(to_match[workers])} s"
                )
                if workers == args.workers[0]:
                    api_adds = api_bulk_adds(served.base, curate, args.api_adds, rng)
                    photo = jpeg_4mp()
                    hash_ms = hash_4mp(served.base, hasher, photo, args.hash_repeats)
                    say(f"API bulk adds {api_adds:,.0f}/s; POST /h/hash 4 MP {hash_ms:.1f} ms")
        store.close()
    hash_base = hash_in_process(jpeg_4mp(), args.hash_repeats)
    return report(
        args,
        machine=machine,
        bulk_rate=bulk_rate,
        build_s=build_s,
        baseline=baseline,
        rows=rows,
        memory=memory,
        empty=(empty_rss, empty_pss),
        to_match=to_match,
        restart_s=restart_s,
        api_adds=api_adds,
        hash_ms=hash_ms,
        hash_base=hash_base,
    )


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def report(args: argparse.Namespace, **r: Any) -> str:
    n = args.hashes
    baseline: Rate = r["baseline"]
    table = [
        "| workers | route | lookups/s | p50 ms | p99 ms | / in-process |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
        f"| - | `Matcher.match_hash`, in process, 1 thread | {baseline.per_second:,.0f} "
        f"| {baseline.p50_ms:.3f} | {baseline.p99_ms:.3f} | 1.00x |",
    ]
    for workers, route, rate in r["rows"]:
        table.append(f"| {workers} | `{route}` | {rate.cells(baseline)} |")
    empty_rss, empty_pss = r["empty"]
    mem = [
        "| workers | worker | RSS before MB | RSS after MB | PSS before MB | PSS after MB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    worst_bytes = 0.0
    for workers, procs in r["memory"].items():
        for i, (rss0, pss0, rss1, pss1) in enumerate(procs):
            mem.append(
                f"| {workers} | {i + 1} | {rss0 / 1024:.0f} | {rss1 / 1024:.0f} "
                f"| {pss0 / 1024:.0f} | {pss1 / 1024:.0f} |"
            )
            worst_bytes = max(worst_bytes, (rss1 - empty_rss) * 1024 / n)
    per_worker = {
        w: max(rate.per_second for ww, route, rate in r["rows"] if ww == w and "m/lookup" in route)
        / w
        for w in r["restart_s"]
    }
    match_times = [t for ts in r["to_match"].values() for t in ts]
    median_match = statistics.median(match_times) if match_times else float("inf")
    worst_match = max(match_times) if match_times else float("inf")
    best_per_worker = max(per_worker.values()) if per_worker else 0.0
    goals = [
        "| goal (issue 14, at 1M hashes) | measured | |",
        "| --- | ---: | --- |",
        f"| at least {GOAL_LOOKUPS_PER_WORKER:,} lookups/s per worker over HTTP | "
        + ", ".join(f"{v:,.0f}/s a worker with {w}" for w, v in per_worker.items())
        + f" | {_met(best_per_worker >= GOAL_LOOKUPS_PER_WORKER)} |",
        f"| at most {GOAL_BYTES_PER_HASH} bytes of RAM per hash | {worst_bytes:.0f} bytes "
        f"(worst worker's RSS at the end, less an empty store's worker, / N) "
        f"| {_met(worst_bytes <= GOAL_BYTES_PER_HASH)} |",
        f"| a new signal matchable within {GOAL_MATCHABLE_S:.0f} s | median {median_match:.3f} s, "
        f"worst {worst_match:.3f} s (every worker) | {_met(worst_match <= GOAL_MATCHABLE_S)} |",
        f"| bulk adds of at least {GOAL_BULK_ADDS:,}/s | bulk import {r['bulk_rate']:,.0f}/s; "
        f"through the API {r['api_adds']:,.0f}/s | "
        f"{_met(min(r['bulk_rate'], r['api_adds']) >= GOAL_BULK_ADDS)} |",
        f"| `POST /h/hash` of a 4 MP JPEG under {GOAL_HASH_MS} ms | {r['hash_ms']:.1f} ms "
        f"(in process {r['hash_base']:.1f} ms, {r['hash_ms'] / r['hash_base']:.2f}x) "
        f"| {_met(r['hash_ms'] < GOAL_HASH_MS)} |",
    ]
    restarts = ", ".join(f"{w} worker(s) {s:.1f} s" for w, s in r["restart_s"].items())
    return (
        "## Service API (`bench/bench_api.py`)\n\n"
        f"{r['machine']}\n\n"
        f"Command: `python bench/bench_api.py --hashes {n} --measure {args.measure} "
        f"--lookups {args.lookups}` (`make bench-api`); servers at log level "
        f"{args.log_level} (INFO: the access log on), no per-key rate limit, no bank match "
        f"cap. SQLite store; one bank of {n:,} uniform random PDQ hashes. Queries: half within "
        f"1-20 bits of an entry and half uniform random (the mix of the HMA figures in issue "
        f"14), {args.measure:,} fresh ones for each figure (the entry cache starts cold; the "
        f"lookups past the measured ones repeat them). Each HTTP figure is {args.measure:,} "
        f"requests from {args.clients_per_worker} client threads a worker on kept-alive "
        f"connections, the load generator on the same 2 cores as the server. The baseline is "
        f"`Matcher.match_hash` in the bench's own process, one thread, "
        f"same run.\n\n" + "\n".join(table) + "\n\n"
        f"RSS and PSS (mapped index pages shared by the workers counted once) of each worker, "
        f"after the measured lookups above and after {args.lookups:,} more; RSS counts the "
        f"pages of the mapped index file a worker has touched. An empty store's worker: "
        f"RSS {empty_rss / 1024:.0f} MB, PSS {empty_pss / 1024:.0f} MB.\n\n"
        + "\n".join(mem)
        + "\n\n"
        f"Bulk import of the {n:,} hashes: {r['bulk_rate']:,.0f} signals/s; index built in "
        f"{r['build_s']:.1f} s and saved once, then every start maps it ({restarts} until every "
        f"worker was ready). Adding through the API, {args.api_adds:,} signals "
        f"{API_BATCH:,} a call: {r['api_adds']:,.0f} signals/s. A signal added through "
        f"`POST /c/bank/<name>/signal` was matched by every worker after "
        + ", ".join(f"{t:.3f}" for t in sorted(match_times))
        + " s.\n\n"
        + "\n".join(goals)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hashes", type=int, default=1_000_000, help="bank size")
    parser.add_argument(
        "--measure", type=int, default=10_000, help="requests per throughput figure"
    )
    parser.add_argument(
        "--lookups", type=int, default=30_000, help="lookups between the two RSS readings"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients-per-worker", type=int, default=4)
    parser.add_argument("--adds", type=int, default=5, help="signals timed add-to-match")
    parser.add_argument("--api-adds", type=int, default=50_000)
    parser.add_argument("--hash-repeats", type=int, default=10)
    parser.add_argument("--workdir", default=None, help="where the store and index go")
    parser.add_argument(
        "--log-level", default="INFO", help="the servers' log level (INFO: access log on)"
    )
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    markdown = run(args)
    print(markdown)
    if not args.no_record:
        record_section("service-api", markdown)


if __name__ == "__main__":
    main()
