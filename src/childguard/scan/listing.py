# Owns the list source of a scan: a text file naming paths and http(s) URLs, one a line.
"""The `--from-list FILE` source adapter: a text file with one path or http(s) URL a line
(blank lines and lines starting with `#` are left out), for inputs that are not one folder:
a list of evidence files, a platform's export of URLs, and later an object store's listing.

A path line (relative paths from the current folder) is walked as a root of its own
(`childguard.pipeline.iter_files`: a folder is walked, a zip gives its members, a missing path
is an error record). A URL line is a
`UrlSource`: its bytes are fetched when it is hashed (on the hashing pool or a Dask worker),
through the SSRF-guarded fetcher (`childguard.netguard.fetch`), within the scan's byte
limit; a refused or failed fetch is the record's error (`fetch-refused`, `fetch-failed`).
`allow_private` lifts the address policy, for tests and local demos only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from childguard.errors import MediaError
from childguard.media import DEFAULT_LIMITS, Limits
from childguard.pipeline import SkipCallback, Source, iter_files

URL_SCHEMES = ("http://", "https://")
FETCH_SECONDS = 30.0


@dataclass(frozen=True)
class UrlSource(Source):
    """A source fetched by URL when it is read; `path` is the URL itself."""

    url: str = ""
    allow_private: bool = False

    def read(self, limits: Limits = DEFAULT_LIMITS) -> bytes:
        from childguard.netguard.fetch import FetchRefused, fetch

        try:
            found = fetch(
                self.url,
                max_bytes=limits.max_bytes,
                timeout=FETCH_SECONDS,
                allow_private=self.allow_private,
            )
        except FetchRefused as exc:
            if exc.reason == "too-large":
                raise MediaError("too-large", str(exc)) from None
            reason = "fetch-refused" if exc.reason == "policy" else "fetch-failed"
            raise MediaError(reason, str(exc)) from None
        return found.data


def read_list(list_file: Path) -> list[str]:
    """The entries of a list file, in order (raises OSError when it cannot be read)."""
    entries = []
    with list_file.open(encoding="utf-8", errors="surrogateescape") as fh:
        for raw in fh:
            line = raw.strip()
            if line and not line.startswith("#"):
                entries.append(line)
    return entries


def is_url(entry: str) -> bool:
    return entry.lower().startswith(URL_SCHEMES)


def iter_list(
    list_file: Path,
    *,
    include_archives: bool = True,
    on_skip: SkipCallback | None = None,
    allow_private: bool = False,
) -> Iterator[Source]:
    """Every source a list file names, in its order (see the module docstring)."""
    for entry in read_list(list_file):
        if is_url(entry):
            yield UrlSource(path=entry, url=entry, allow_private=allow_private)
        else:
            yield from iter_files([entry], include_archives=include_archives, on_skip=on_skip)
