"""The crawl's adapter onto the pipeline's signals stage, and the content cache's JSON form of
what a record carries beyond its signals.

`hash_fetched` turns fetched bytes into `Content` and runs `childguard.pipeline.signals_of`,
the same code every source uses (safe decode, every registered signal type). With `robust`
(the default of real crawls) the record also gets the robust query views, and with `features`
the ORB features that protected-photo verification needs. It is a plain top-level function so
a process pool can run it off the reactor.

`extras_json` / `extras_from_json` carry the views and features through the crawl's content
cache (`content_hashes.robust`; the features in the layout of
`childguard.robust.features_codec`, mirror, regions and check image included), so a re-crawl
that gets `304 Not Modified` matches with them as a fresh fetch would.
"""

from __future__ import annotations

import contextlib
from typing import Any

from childguard.media import BYTES, DEFAULT_LIMITS, Content, Limits
from childguard.pipeline.hashing import HashOptions, pdq_views, signals_of
from childguard.robust.query import QueryHash
from childguard.signals.content import ContentSignals, QueryView
from childguard.signals.pdq import PdqSignal
from childguard.signals.registry import types_for

ERROR_MAX = 500  # the length of content_hashes.error


def hash_fetched(
    data: bytes,
    limits: Limits = DEFAULT_LIMITS,
    *,
    robust: bool = False,
    features: bool = False,
    sha256: str | None = None,
) -> ContentSignals:
    """The signals of fetched bytes; a decode failure is recorded in `error`, never raised.
    Exact hashes are always present (they key the content cache), even over the byte limit.
    `sha256`: the hex sha256 of `data` where the caller has it (not computed twice)."""
    content = Content(data, limits=limits, digests={"sha256": sha256} if sha256 else {})
    record = signals_of(content, HashOptions(robust=robust, features=features, limits=limits))
    for cls in types_for([BYTES]):
        if cls.name not in record.signals and (found := cls.hash_content(content)) is not None:
            record.signals[cls.name] = found
    if record.error:
        record.error = record.error[:ERROR_MAX]
    return record


def sha256_of(record: ContentSignals) -> str:
    return record.value("sha256") or ""


def has_extras(record: ContentSignals, *, robust: bool, features: bool) -> bool:
    """Whether a record carries what a crawl with those options matches with (content with
    no photo signal carries all there will ever be)."""
    if PdqSignal.name not in record.signals:
        return True
    return (not robust or record.views is not None) and (
        not features or record.features is not None
    )


def extras_json(record: ContentSignals) -> dict[str, Any] | None:
    """The robust views and features as plain JSON (for the content cache), or None."""
    if record.views is None:
        return None
    data: dict[str, Any] = {"queries": [[q.pdq, q.quality, q.variant] for q in pdq_views(record)]}
    if record.features is not None:
        from childguard.robust.features_codec import features_to_json

        data["features"] = features_to_json(record.features)
    return data


def extras_from_json(record: ContentSignals, data: dict[str, Any] | None) -> ContentSignals:
    """`record` with the views and features of `extras_json` output; unchanged for None or
    anything unreadable, and without features when those are unreadable or in an older layout
    (the content is then hashed again when needed)."""
    if not data or "queries" not in data:
        return record
    try:
        queries = [QueryHash(str(h), int(q), str(v)) for h, q, v in data["queries"]]
    except (ValueError, TypeError):
        return record
    record.views = [QueryView(PdqSignal.name, q.pdq, q.quality, q.variant) for q in queries]
    stored = data.get("features")
    if stored is not None:
        from childguard.robust.features_codec import FeaturesCodecError, features_from_json

        with contextlib.suppress(FeaturesCodecError):
            record.features = features_from_json(stored, queries)
    return record
