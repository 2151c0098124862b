"""The sha256 a hash worker computes to key the content cache is the record's own: the exact
signal types take a digest the caller passes with the content (`Content.digests`) instead of
hashing the bytes again, and the crawl's records are the same as those hashed from scratch."""

from __future__ import annotations

import hashlib
from typing import Any

from childguard.crawl.hashing import hash_fetched
from childguard.media import Content
from childguard.signals.exact import Md5Signal, Sha1Signal, Sha256Signal


def test_exact_signals_take_a_known_digest_of_their_own_name_only() -> None:
    data = b"some bytes"
    given = "ab" * 32  # not the real digest: it shows the value is taken as given
    content = Content(data, digests={"sha256": given})
    assert content.digest("sha256") == given and content.digest("md5") is None
    found = Sha256Signal.hash_content(content)
    assert found is not None and found.value == given
    md5, sha1 = Md5Signal.hash_content(content), Sha1Signal.hash_content(content)
    assert md5 is not None and md5.value == hashlib.md5(data).hexdigest()
    assert sha1 is not None and sha1.value == hashlib.sha1(data).hexdigest()
    plain = Sha256Signal.hash_content(Content(data))
    assert plain is not None and plain.value == hashlib.sha256(data).hexdigest()
    assert Sha256Signal.hash_content(Content(b"", digests={"sha256": given})) is None


def test_hash_fetched_with_the_workers_sha256_is_the_record_hashed_from_scratch(
    make_photo: Any,
) -> None:
    data = make_photo(3)
    sha = hashlib.sha256(data).hexdigest()
    known = hash_fetched(data, sha256=sha)
    fresh = hash_fetched(data)
    assert known.to_dict() == fresh.to_dict()
    assert known.value("sha256") == sha and known.value("pdq")
