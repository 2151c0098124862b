# Owns what a classification scheme name may be, wherever an entry or a list names one.
"""Classification scheme names (`inhope`, `uk`, `ncmec`, `vics-<profile>`, ...) come from
outside: an imported CSV or VICS file sets them freely. They are labels, never paths, but some
outputs are named after them (a scan's `vics-<profile>.json`) and some print them, so a scheme
is refused at import when it could mean anything beyond a label: it must start with a letter
or digit and hold only letters, digits, spaces and `._:+()/-`, with no `..`, no backslash, no
control character, no markup bracket, and at most `MAX_SCHEME` characters. Outputs still
never build a path from a scheme (see `file_token`)."""

from __future__ import annotations

import hashlib
import re

MAX_SCHEME = 64
_SCHEME = re.compile(r"[^\W_][\w .:+()/-]*")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


def scheme_problem(scheme: str | None) -> str | None:
    """Why `scheme` is not an acceptable classification scheme name (None: it is, or absent)."""
    if scheme is None:
        return None
    if not scheme:
        return "classification scheme is empty"
    if len(scheme) > MAX_SCHEME:
        return f"classification scheme is longer than {MAX_SCHEME} characters"
    if ".." in scheme or not _SCHEME.fullmatch(scheme):
        return (
            f"classification scheme {scheme[:80]!r} may hold only letters, digits, spaces and "
            "._:+()/- (starting with a letter or digit, no '..')"
        )
    return None


def file_token(text: str) -> str:
    """A file-name part for `text` that is safe whatever `text` is: `text` itself when it is
    1-40 letters, digits, '_' or '-' (starting with a letter or digit), else a digest of it."""
    if _TOKEN.fullmatch(text):
        return text
    return "x" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
