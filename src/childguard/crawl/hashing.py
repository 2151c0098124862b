"""The one function the crawler hashes image bytes with, and the record it produces.

`hash_image_bytes` runs `childguard.hashing.hash_bytes` (safe decode, PDQ plus
md5/sha1/sha256: the engine behind `childguard hash`) and keeps the fields the
crawler needs. With `robust` (the default of real crawls) it also keeps the robust
query views (`queries`: borders removed, screenshot regions, mirrors and rotations),
and with `features` the ORB features that protected-photo verification needs. It is a
plain top-level function so a process pool can run it off the reactor.

`ImageHashes.robust_json()` / `robust_from_json()` carry the views and features
through the crawl's content cache (`content_hashes.robust`; the features in the layout
of `childguard.robust.features_codec`, mirror, regions and check image included), so a
re-crawl that gets `304 Not Modified` still matches with them as a fresh fetch would.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from childguard.hashing import hash_bytes
from childguard.media import DEFAULT_LIMITS, Limits
from childguard.robust.query import QueryHash
from childguard.signals.exact import exact_hashes

if TYPE_CHECKING:
    from childguard.robust.query_features import QueryFeatures


@dataclass(frozen=True)
class ImageHashes:
    """Signals of one image's bytes. `pdq` is None when the bytes could not be decoded
    (`error` says why); exact hashes are always present. `queries` (robust views, original
    first) and `features` (ORB keypoints and descriptors) are None when not computed."""

    sha256: str
    md5: str
    sha1: str
    pdq: str | None = None
    pdq_quality: int | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None
    queries: tuple[QueryHash, ...] | None = field(default=None, compare=False, repr=False)
    features: QueryFeatures | None = field(default=None, compare=False, repr=False)

    @property
    def signals(self) -> dict[str, str]:
        """signal type -> value, for matchers."""
        out = {"sha256": self.sha256, "md5": self.md5, "sha1": self.sha1}
        if self.pdq is not None:
            out["pdq"] = self.pdq
        return out

    def has(self, *, robust: bool, features: bool) -> bool:
        """Whether these hashes carry what a crawl with those options matches with
        (undecodable content carries all there will ever be)."""
        if self.pdq is None:
            return True
        return (not robust or self.queries is not None) and (
            not features or self.features is not None
        )

    def robust_json(self) -> dict[str, Any] | None:
        """The robust views and features as plain JSON (for the content cache), or None."""
        if self.queries is None:
            return None
        data: dict[str, Any] = {"queries": [[q.pdq, q.quality, q.variant] for q in self.queries]}
        if self.features is not None:
            from childguard.robust.features_codec import features_to_json

            data["features"] = features_to_json(self.features)
        return data


def robust_from_json(data: dict[str, Any] | None) -> dict[str, Any]:
    """`queries` and `features` keyword arguments of ImageHashes from `robust_json()` output;
    empty for None or anything unreadable, and without `features` when those are unreadable
    or in an older layout (the content is then hashed again when needed)."""
    if not data or "queries" not in data:
        return {}
    try:
        queries = tuple(QueryHash(str(h), int(q), str(v)) for h, q, v in data["queries"])
        out: dict[str, Any] = {"queries": queries}
        stored = data.get("features")
        if stored is not None:
            from childguard.robust.features_codec import FeaturesCodecError, features_from_json

            with contextlib.suppress(FeaturesCodecError):
                out["features"] = features_from_json(stored, list(queries))
        return out
    except (ValueError, TypeError):
        return {}


def hash_image_bytes(
    data: bytes,
    limits: Limits = DEFAULT_LIMITS,
    *,
    robust: bool = False,
    features: bool = False,
) -> ImageHashes:
    """Hash image bytes with the same engine as `childguard hash` (plus, with `robust`, the
    robust query views, and with `features` the ORB features); a decode failure is recorded
    in `error`, never raised."""
    r = hash_bytes(data, limits=limits, robust=robust, features=features)
    if not r.sha256:  # over the byte limit: exact hashes of what we have, for the cache key
        ex = exact_hashes(data)
        r.md5, r.sha1, r.sha256 = ex["md5"], ex["sha1"], ex["sha256"]
    return ImageHashes(
        sha256=r.sha256 or "",
        md5=r.md5 or "",
        sha1=r.sha1 or "",
        pdq=r.pdq,
        pdq_quality=r.pdq_quality,
        width=r.width,
        height=r.height,
        error=(r.error or None) and str(r.error)[:500],
        queries=tuple(r.queries) if r.queries is not None else None,
        features=r.features,
    )
