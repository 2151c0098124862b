# Owns the hotline's processing jobs: a report's URLs fetched, traced and turned into items.
"""From a report to items: the `hotline-report` job kind (params `report_id`), the
`hotline-retry` kind (every URL due again after a failed fetch) and `hotline-purge` (expired
evidence, `childguard.hotline.evidence`).

Each due URL of the report (`received`, or `fetch-failed` and due again, or left `fetched` or
`traced` by a worker that died) is fetched with the guarded fetch (`childguard.netguard.fetch`:
the SSRF policy after redirects and DNS changes, size and time limits; `allow_private` only
from the settings). A direct image or video yields itself; an HTML page yields its media
(`childguard.netguard.links.media_urls`, at most `max_media_per_page`, each fetched under the
same guard). The URL is then `fetched`, traced (`childguard.hotline.trace`) and `traced`.
Every media file enters the one pipeline through `FetchedMedia` (a source adapter to
`Content`), is hashed and matched against the banks (`Pipeline.process` with a `Matcher`), and
becomes an item (`childguard.hotline.items.record_content`) with its evidence sealed. The URL
ends `in-review` when an item it brought waits for an analyst, else `assessed`. A failed fetch
leaves it `fetch-failed` with the reason and a retry after `retry_base * 2**(attempts-1)`;
after `give_up_after` attempts it is not tried again.

A worker killed mid-job loses nothing and duplicates nothing: the job is claimed again after
its heartbeat lapses and re-runs; items are unique by SHA-256 and places by (item, report URL,
URL). The service calls `configure(ProcessingSettings(...))` once at start (the evidence key
and directory, the private-address setting, the tracer).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from childguard.hotline import reports
from childguard.hotline.evidence import RETENTION, keep_evidence, purge_expired
from childguard.hotline.items import DedupeSettings, Place, record_content, waits_for_review
from childguard.hotline.signatures import sign_banked
from childguard.hotline.trace import HostTracer, Tracer
from childguard.jobs import JobContext, JobFailed, register
from childguard.log import get_logger
from childguard.matcher import Matcher
from childguard.media import DEFAULT_LIMITS, Content, Limits, sniff_content_type
from childguard.netguard.fetch import Fetched, FetchRefused, fetch
from childguard.netguard.links import is_media_url, media_urls
from childguard.pipeline import Pipeline
from childguard.store.base import utcnow
from childguard.store.db import Store

log = get_logger(__name__)

REPORT_KIND = reports.JOB_KIND
RETRY_KIND = "hotline-retry"
PURGE_KIND = "hotline-purge"
NEVER = datetime(9999, 12, 31, tzinfo=UTC)
RESUMABLE_STATES = ("received", "fetched", "traced", "fetch-failed")


@dataclass
class ProcessingSettings:
    """What the processing needs from the deployment."""

    evidence_dir: Path
    evidence_key: bytes
    allow_private: bool = False
    max_bytes: int = 50 * 1024 * 1024
    max_page_bytes: int = 5 * 1024 * 1024
    timeout: float = 30.0
    max_media_per_page: int = 50
    dedupe: DedupeSettings = field(default_factory=DedupeSettings)
    retention: dict[str, int] = field(default_factory=lambda: dict(RETENTION))
    retry_base: timedelta = timedelta(minutes=5)
    give_up_after: int = 5
    received_grace: timedelta = timedelta(minutes=10)
    limits: Limits = field(default_factory=lambda: DEFAULT_LIMITS)
    tracer: Tracer | None = None

    def the_tracer(self) -> Tracer:
        return self.tracer or HostTracer(allow_private=self.allow_private)


_settings: ProcessingSettings | None = None
_matchers: dict[str, Matcher] = {}
_matchers_lock = threading.Lock()


def configure(settings: ProcessingSettings) -> None:
    """Set the processing's settings for this process (the service does at start)."""
    global _settings
    _settings = settings


def current_settings() -> ProcessingSettings:
    if _settings is None:
        raise JobFailed("the hotline's processing is not configured in this process")
    return _settings


def _matcher(store: Store) -> Matcher:
    key = str(store.engine.url)
    with _matchers_lock:
        matcher = _matchers.get(key)
        if matcher is None:
            matcher = _matchers[key] = Matcher(store, persist=False)
        else:
            matcher.refresh()
        return matcher


@dataclass(frozen=True)
class FetchedMedia:
    """Source adapter: one fetched media file and where it was found, as pipeline `Content`."""

    url: str
    page_url: str | None
    fetched: Fetched

    def content(self, limits: Limits) -> Content:
        return Content(self.fetched.data, origin=self.url, limits=limits)


def _is_media(fetched: Fetched) -> bool:
    kind = fetched.content_type
    if kind.startswith(("image/", "video/")):
        return True
    return sniff_content_type(fetched.data[:64]) is not None


def _media_of(url: str, settings: ProcessingSettings) -> tuple[Fetched, Iterator[FetchedMedia]]:
    """The reported URL fetched, and the media it yields (fetched lazily)."""
    first = fetch(
        url,
        max_bytes=settings.max_bytes,
        timeout=settings.timeout,
        allow_private=settings.allow_private,
    )
    if _is_media(first):
        return first, iter([FetchedMedia(first.url, None, first)])
    is_page = first.content_type in ("text/html", "application/xhtml+xml")
    if not is_page and not is_media_url(url) and first.data.lstrip()[:1] != b"<":
        raise FetchRefused(f"{first.url} is neither media nor a page ({first.content_type})")
    if len(first.data) > settings.max_page_bytes:
        raise FetchRefused(f"{first.url} is a page over {settings.max_page_bytes} bytes")
    html = first.data.decode("utf-8", "replace")
    links = media_urls(first.url, html)[: settings.max_media_per_page]

    def fetch_each() -> Iterator[FetchedMedia]:
        for link in links:
            try:
                got = fetch(
                    link,
                    max_bytes=settings.max_bytes,
                    timeout=settings.timeout,
                    allow_private=settings.allow_private,
                )
            except FetchRefused as exc:
                log.info("hotline.media_skipped", url=link, reason=str(exc))
                continue
            if _is_media(got):
                yield FetchedMedia(got.url, first.url, got)

    return first, fetch_each()


def _retry_at(attempts: int, settings: ProcessingSettings, now: datetime) -> datetime:
    if attempts >= settings.give_up_after:
        return NEVER
    return now + settings.retry_base * (2 ** max(0, attempts - 1))


def process_url(
    store: Store, url: reports.ReportUrlInfo, settings: ProcessingSettings
) -> dict[str, Any]:
    """Fetch, trace and record one report URL; what came of it."""
    try:
        first, media = _media_of(url.url, settings)
        fetched = list(media)
    except FetchRefused as exc:
        attempts = url.attempts + 1
        retry = _retry_at(attempts, settings, utcnow())
        reason = str(exc) if retry != NEVER else f"gave up after {attempts} attempts: {exc}"
        reports.mark_url(store, url.id, "fetch-failed", error=reason, next_attempt_at=retry)
        return {"url": url.id, "state": "fetch-failed", "error": reason}
    reports.mark_url(store, url.id, "fetched", final_url=first.url, content_type=first.content_type)
    trace = settings.the_tracer().trace(first.url, first.headers)
    reports.mark_url(store, url.id, "traced", trace=trace)
    pipeline = Pipeline(matcher=_matcher(store), robust=False, limits=settings.limits)
    items: list[int] = []
    review = False
    for found in fetched:
        record, outcome = pipeline.process(found.content(settings.limits))
        if not record.ok:
            log.info("hotline.media_unreadable", url=found.url, error=record.error)
            continue
        place = Place(
            url=found.url,
            page_url=found.page_url,
            report_id=url.report_id,
            report_url_id=url.id,
        )
        item = record_content(store, record, outcome.matches, place, dedupe=settings.dedupe)
        keep_evidence(
            store,
            settings.evidence_key,
            settings.evidence_dir,
            item.item_id,
            found.fetched.data,
            retention=settings.retention,
        )
        items.append(item.item_id)
        review = review or waits_for_review(item)
    state = "in-review" if review else "assessed"
    reports.mark_url(store, url.id, state)
    return {"url": url.id, "state": state, "items": items}


def process_report(
    store: Store, report_id: int, settings: ProcessingSettings, *, now: datetime | None = None
) -> dict[str, Any]:
    """Every URL of the report that is due by `now` (or was left half done) processed."""
    now = now or utcnow()
    done = []
    for url in reports.report_urls(store, report_id):
        if url.state not in RESUMABLE_STATES:
            continue
        if url.state == "fetch-failed" and url.next_attempt_at > now:
            continue
        done.append(process_url(store, url, settings))
    return {"report": report_id, "urls": done}


def process_due(
    store: Store, settings: ProcessingSettings, *, now: datetime | None = None, limit: int = 100
) -> dict[str, Any]:
    """Every URL due again by `now` processed: after a failed fetch, or never started though
    received more than `received_grace` ago (its report's job was lost); then every banked
    item that has no signature yet signed from its evidence (`signatures.sign_banked`)."""
    at = now or utcnow()
    due = [
        url
        for url in reports.due_urls(store, at, limit)
        if url.state != "received" or url.next_attempt_at <= at - settings.received_grace
    ]
    done = [process_url(store, url, settings) for url in due]
    signed = sign_banked(store, settings.evidence_key, limit=limit, limits=settings.limits)
    return {"urls": done, "signed": signed.to_dict()}


def _report_job(ctx: JobContext) -> dict[str, Any]:
    try:
        report_id = int(ctx.params["report_id"])
    except (KeyError, TypeError, ValueError):
        raise JobFailed(f"a {REPORT_KIND} job needs an integer report_id: {ctx.params}") from None
    return process_report(ctx.store, report_id, current_settings())


def _retry_job(ctx: JobContext) -> dict[str, Any]:
    return process_due(ctx.store, current_settings())


def _purge_job(ctx: JobContext) -> dict[str, Any]:
    return purge_expired(ctx.store).to_dict()


register(REPORT_KIND, _report_job, "fetch a report's URLs and turn what they hold into items")
register(RETRY_KIND, _retry_job, "fetch again the hotline URLs whose retry is due")
register(PURGE_KIND, _purge_job, "delete the hotline evidence whose retention ended")
