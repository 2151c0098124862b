# Owns the service's Prometheus metrics: what is counted, and the admin's GET /metrics.
"""Prometheus metrics (prometheus-client), scraped at `GET /metrics` with an `admin` key.

- `childguard_http_requests_total{route, method, status}`: requests answered, by route
  template (`<unmatched>` where no route matched);
- `childguard_http_request_duration_seconds{route, method}` (histogram): time to answer;
- `childguard_lookups_total{signal_type}`: query signals matched (each hash of a batch, each
  signal of an upload);
- `childguard_matches_total{signal_type, bank}`: matches answered, allow-bank hits included;
- `childguard_index_size{signal_type}` (gauge): entries in the derived index;
- `childguard_index_last_refresh_timestamp_seconds` (gauge): Unix time of the last sync with
  the store (the stalest worker's), and `childguard_index_refresh_age_seconds`, the seconds
  since then at scrape time;
- `childguard_rate_limited_total{limit}`: requests refused with 429 (`key` or `client`);
- `childguard_request_timeouts_total`: requests answered 503 for running past the time limit;
- `childguard_bank_quarantines_total{bank}`: banks quarantined for passing their match cap,
  and `childguard_banks_quarantined` (gauge), banks quarantined now.

With several workers, `childguard serve` points `PROMETHEUS_MULTIPROC_DIR` at a fresh folder
before they start; each worker then writes its samples there and a scrape of any worker sums
the counters and histograms of all of them (gauges: the largest size, the stalest refresh).
One process (tests, `--workers 1`) uses the default registry, with the process metrics.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Mapping

from fastapi import APIRouter, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from childguard.service.auth import Caller, owner

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
REFRESHED_NAME = "childguard_index_last_refresh_timestamp_seconds"

REQUESTS = Counter(
    "childguard_http_requests_total",
    "Requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "childguard_http_request_duration_seconds",
    "Time to answer a request, by route template and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LOOKUPS = Counter(
    "childguard_lookups_total", "Query signals matched, by signal type.", ["signal_type"]
)
MATCHES = Counter(
    "childguard_matches_total",
    "Matches answered, by signal type and bank.",
    ["signal_type", "bank"],
)
INDEX_SIZE = Gauge(
    "childguard_index_size",
    "Entries in the derived index of a signal type.",
    ["signal_type"],
    multiprocess_mode="livemax",
)
INDEX_REFRESHED = Gauge(
    REFRESHED_NAME,
    "Unix time of the last sync of the matcher with the store (the stalest worker's).",
    multiprocess_mode="livemin",
)
RATE_LIMITED = Counter(
    "childguard_rate_limited_total", "Requests refused with 429, by limit.", ["limit"]
)
TIMEOUTS = Counter(
    "childguard_request_timeouts_total", "Requests answered 503 for running past the time limit."
)
QUARANTINES = Counter(
    "childguard_bank_quarantines_total",
    "Banks quarantined for answering more matches a minute than their cap.",
    ["bank"],
)
QUARANTINED = Gauge(
    "childguard_banks_quarantined", "Banks quarantined now.", multiprocess_mode="livemax"
)

router = APIRouter(tags=["operations"])


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    REQUESTS.labels(route, method, str(status)).inc()
    DURATION.labels(route, method).observe(seconds)


def observe_matches(lookups: Mapping[str, int], matches: Mapping[tuple[str, str], int]) -> None:
    """Count query signals by type, and matches by (signal type, bank name)."""
    for signal_type, n in lookups.items():
        LOOKUPS.labels(signal_type).inc(n)
    for (signal_type, bank), n in matches.items():
        MATCHES.labels(signal_type, bank).inc(n)


def observe_index(sizes: Mapping[str, int], quarantined: int) -> None:
    """This process's matcher has just synced with the store."""
    for signal_type, size in sizes.items():
        INDEX_SIZE.labels(signal_type).set(size)
    INDEX_REFRESHED.set(time.time())
    QUARANTINED.set(quarantined)


def process_exited() -> None:
    """Drop this process's live gauges from the shared folder (multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(os.getpid())


class _Scrape:
    """What one scrape answers: every worker's samples in multiprocess mode, else this
    process's, plus the refresh age computed now."""

    def collect(self) -> Iterator[Metric]:
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            families: Iterable[Metric] = registry.collect()
        else:
            families = REGISTRY.collect()
        refreshed: list[float] = []
        for family in families:
            if family.name == REFRESHED_NAME:
                refreshed += [s.value for s in family.samples if s.value > 0]
            yield family
        age = GaugeMetricFamily(
            "childguard_index_refresh_age_seconds",
            "Seconds since the stalest worker's matcher last synced with the store.",
        )
        if refreshed:
            age.add_metric([], max(0.0, time.time() - min(refreshed)))
            yield age


def render() -> bytes:
    """The metrics in Prometheus's text format."""
    return generate_latest(_Scrape())


@router.get("/metrics", response_class=Response)
def metrics(_: Caller = owner("admin")) -> Response:
    """Prometheus metrics in the text format (an `admin` key)."""
    return Response(render(), media_type=CONTENT_TYPE_LATEST)
