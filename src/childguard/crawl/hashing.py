"""The one function the crawler hashes image bytes with, and the record it produces.

`hash_image_bytes` decodes safely (`childguard.media.decode_image`) and computes
PDQ plus md5/sha1/sha256. It is a plain top-level function so a process pool can
run it off the reactor. When `childguard.hashing.hash_bytes` lands, this is the
only place to swap.
"""

from __future__ import annotations

from dataclasses import dataclass

from childguard.errors import MediaError
from childguard.media import Limits, decode_image
from childguard.signals.exact import exact_hashes
from childguard.signals.pdq import pdq_from_pixels


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


def hash_image_bytes(data: bytes, limits: Limits | None = None) -> ImageHashes:
    """Hash image bytes; a decode failure is recorded in `error`, never raised."""
    exact = exact_hashes(data)
    try:
        decoded = decode_image(data, limits) if limits else decode_image(data)
    except MediaError as exc:
        return ImageHashes(
            sha256=exact["sha256"],
            md5=exact["md5"],
            sha1=exact["sha1"],
            error=f"{exc.reason}: {exc.message}"[:500],
        )
    pdq, quality = pdq_from_pixels(decoded.pixels)
    return ImageHashes(
        sha256=exact["sha256"],
        md5=exact["md5"],
        sha1=exact["sha1"],
        pdq=pdq,
        pdq_quality=quality,
        width=decoded.width,
        height=decoded.height,
    )
