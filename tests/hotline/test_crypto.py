"""Sealing opens only with its key and purpose, and refuses altered blobs."""

from __future__ import annotations

import os

import pytest

from childguard.hotline.crypto import SealError, derive_key, seal, unseal


def test_seal_round_trip_and_refusals() -> None:
    secret = os.urandom(32)
    key = derive_key(secret, "hotline-evidence")
    assert key == derive_key(secret, "hotline-evidence") != derive_key(secret, "report-email")
    blob = seal(key, b"bytes of evidence", b"item:7")
    assert b"bytes of evidence" not in blob
    assert seal(key, b"bytes of evidence", b"item:7") != blob  # a fresh nonce each time
    assert unseal(key, blob, b"item:7") == b"bytes of evidence"
    with pytest.raises(SealError):
        unseal(key, blob, b"item:8")
    with pytest.raises(SealError):
        unseal(derive_key(secret, "report-email"), blob, b"item:7")
    altered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealError):
        unseal(key, altered, b"item:7")
    with pytest.raises(SealError):
        unseal(key, b"short", b"item:7")
    with pytest.raises(ValueError):
        derive_key(b"too short", "x")
