"""The crawler's image cache: conditional-request validators per URL, hashes per content.

- Per image URL it keeps the ETag and Last-Modified of the last fetch and the
  sha256 of the bytes seen there, so a re-crawl sends `If-None-Match` /
  `If-Modified-Since` and a `304 Not Modified` reuses the stored hashes.
- Per sha256 it keeps the computed signals, so bytes already seen (under any URL)
  are never decoded and hashed again.
Writes are buffered and flushed in batches (and on close); reads see unflushed writes.
URLs are looked up through their `url_key`, so any length is kept. A validator longer than
its column (a hostile or broken server) is dropped, not stored: that URL is simply fetched
unconditionally next time, and nothing else in the batch is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, select, update

from childguard.crawl.hashing import extras_from_json, extras_json, sha256_of
from childguard.signals.content import ContentSignals
from childguard.signals.pdq import PdqSignal
from childguard.store.base import utcnow
from childguard.store.crawl_models import ContentHashes, CrawledImage
from childguard.store.db import Store
from childguard.store.url_keys import url_key

ETAG_MAX = 500  # the lengths of CrawledImage.etag and .last_modified
LAST_MODIFIED_MAX = 100
_IMAGES = cast(Table, CrawledImage.__table__)
_CONTENT = cast(Table, ContentHashes.__table__)
_UPDATE_IMAGE = (
    update(_IMAGES)
    .where(_IMAGES.c.id == bindparam("row_id"))
    .values(
        etag=bindparam("etag"),
        last_modified=bindparam("last_modified"),
        sha256=bindparam("sha256"),
        last_checked_at=bindparam("last_checked_at"),
    )
)


def _record_of(row: ContentHashes) -> ContentSignals:
    """The cached record: every signal where the row has them, else its fixed columns."""
    if row.signals:
        return ContentSignals.from_dict(row.signals)
    record = ContentSignals(
        path="", width=row.width, height=row.height, error=row.error, content_type=None
    )
    record.set("sha256", row.sha256)
    record.set("md5", row.md5)
    record.set("sha1", row.sha1)
    if row.pdq:
        record.set(PdqSignal.name, row.pdq, row.pdq_quality)
    return record


@dataclass(frozen=True)
class Validators:
    etag: str | None
    last_modified: str | None
    sha256: str | None


class ImageCache:
    def __init__(self, store: Store, *, flush_every: int = 200) -> None:
        self.store = store
        self.flush_every = flush_every
        self._urls: dict[str, Validators | None] = {}
        self._content: dict[str, ContentSignals] = {}
        self._dirty_urls: dict[str, tuple[Validators, datetime]] = {}
        self._dirty_content: dict[str, ContentSignals] = {}
        # After `preload`, URLs and content hashes absent from memory are known to be absent.
        self._urls_complete = False
        self._known_sha: set[str] | None = None

    def preload(self, max_rows: int = 500_000) -> bool:
        """Load every URL's validators and the set of known sha256 in two queries, so the
        crawl asks the database nothing per image. Skipped (False) for caches over `max_rows`."""
        with self.store.session() as s:
            if (s.scalar(select(func.count()).select_from(CrawledImage)) or 0) > max_rows:
                return False
            for url, etag, lm, sha in s.execute(
                select(
                    CrawledImage.url,
                    CrawledImage.etag,
                    CrawledImage.last_modified,
                    CrawledImage.sha256,
                )
            ):
                self._urls[url] = Validators(etag, lm, sha)
            self._known_sha = set(s.scalars(select(ContentHashes.sha256)))
        self._urls_complete = True
        return True

    def known_sha(self) -> set[str]:
        """The sha256 of every content the store held at `preload` (empty before it)."""
        return set(self._known_sha or ())

    def validators(self, url: str) -> Validators | None:
        if url in self._urls:
            return self._urls[url]
        if self._urls_complete:
            return None
        with self.store.session() as s:
            row = s.scalar(select(CrawledImage).where(CrawledImage.url_key == url_key(url)))
            found = Validators(row.etag, row.last_modified, row.sha256) if row else None
        if len(self._urls) > 50_000 and not self._urls_complete:
            self._urls.clear()
        self._urls[url] = found
        return found

    def hashes(self, sha256: str) -> ContentSignals | None:
        if sha256 in self._content:
            return self._content[sha256]
        if self._known_sha is not None and sha256 not in self._known_sha:
            return None
        with self.store.session() as s:
            row = s.get(ContentHashes, sha256)
            if row is None:
                return None
            found = extras_from_json(_record_of(row), row.robust)
        self._content[sha256] = found
        return found

    def remember(
        self, url: str, etag: str | None, last_modified: str | None, hashes: ContentSignals
    ) -> None:
        """Record what `url` served now (validators and content) and its hashes."""
        v = Validators(
            etag if etag is None or len(etag) <= ETAG_MAX else None,
            last_modified
            if last_modified is None or len(last_modified) <= LAST_MODIFIED_MAX
            else None,
            sha256_of(hashes),
        )
        self._urls[url] = v
        self._dirty_urls[url] = (v, utcnow())
        sha = sha256_of(hashes)
        old = self._content.get(sha)
        richer = old is not None and (
            (hashes.views is not None and old.views is None)
            or (hashes.features is not None and old.features is None)
        )
        if old is None or richer:  # new content, or hashed again for its robust views
            self._dirty_content[sha] = hashes
        self._content[sha] = hashes
        if len(self._dirty_urls) + len(self._dirty_content) >= self.flush_every:
            self.flush()

    def touch(self, url: str) -> None:
        """A 304: the URL still serves what we have."""
        v = self._urls.get(url)
        if v is not None:
            self._dirty_urls[url] = (v, utcnow())

    def flush(self) -> None:
        if not self._dirty_urls and not self._dirty_content:
            return
        urls, content = self._dirty_urls, self._dirty_content
        self._dirty_urls, self._dirty_content = {}, {}
        now = utcnow()
        with self.store.session() as s:
            if content:
                have = {
                    row.sha256: row
                    for row in s.scalars(
                        select(ContentHashes).where(ContentHashes.sha256.in_(list(content)))
                    )
                }
                fresh = []
                for sha, h in content.items():
                    if sha in have:
                        if h.views is not None:
                            have[sha].robust = extras_json(h)
                    else:
                        fresh.append(
                            {
                                "sha256": sha,
                                "md5": h.value("md5") or "",
                                "sha1": h.value("sha1") or "",
                                "pdq": h.value(PdqSignal.name),
                                "pdq_quality": h.quality(PdqSignal.name),
                                "width": h.width,
                                "height": h.height,
                                "error": h.error,
                                "hashed_at": now,
                                "robust": extras_json(h),
                                "signals": h.to_dict(),
                            }
                        )
                if fresh:  # one Core executemany: no ORM object, nor ORM bulk work, per row
                    s.connection().execute(insert(_CONTENT), fresh)
            if urls:
                keys = {url: url_key(url) for url in urls}
                found = s.execute(
                    select(CrawledImage.url_key, CrawledImage.id).where(
                        CrawledImage.url_key.in_(list(keys.values()))
                    )
                )
                ids = {key: row_id for key, row_id in found}
                fresh, changed = [], []
                for url, (v, at) in urls.items():
                    values = {"etag": v.etag, "last_modified": v.last_modified, "sha256": v.sha256}
                    row_id = ids.get(keys[url])
                    if row_id is None:
                        fresh.append(
                            {
                                "url": url,
                                "url_key": keys[url],
                                "first_fetched_at": at,
                                "last_checked_at": at,
                                **values,
                            }
                        )
                    else:
                        changed.append({"row_id": row_id, "last_checked_at": at, **values})
                conn = s.connection()
                if fresh:
                    conn.execute(insert(_IMAGES), fresh)
                if changed:  # one executemany UPDATE by primary key
                    conn.execute(_UPDATE_IMAGE, changed)
