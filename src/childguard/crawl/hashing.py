"""The one function the crawler hashes image bytes with, and the record it produces.

`hash_image_bytes` runs `childguard.hashing.hash_bytes` (safe decode, PDQ plus
md5/sha1/sha256: the engine behind `childguard hash`) and keeps the fields the
crawler needs. It is a plain top-level function so a process pool can run it off
the reactor.
"""

from __future__ import annotations

from dataclasses import dataclass

from childguard.hashing import hash_bytes
from childguard.media import DEFAULT_LIMITS, Limits
from childguard.signals.exact import exact_hashes


@dataclass(frozen=True)
class ImageHashes:
    """Signals of one image's bytes. `pdq` is None when the bytes could not be decoded
    (`error` says why); exact hashes are always present."""

    sha256: str
    md5: str
    sha1: str
    pdq: str | None = None
    pdq_quality: int | None = None
    width: int | None = None
    height: int | None = None
    error: str | None = None

    @property
    def signals(self) -> dict[str, str]:
        """signal type -> value, for matchers."""
        out = {"sha256": self.sha256, "md5": self.md5, "sha1": self.sha1}
        if self.pdq is not None:
            out["pdq"] = self.pdq
        return out


def hash_image_bytes(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ImageHashes:
    """Hash image bytes with the same engine as `childguard hash`; a decode failure is
    recorded in `error`, never raised."""
    r = hash_bytes(data, limits=limits)
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
    )
