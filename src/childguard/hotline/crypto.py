# Owns the hotline's encryption at rest: AES-GCM sealing of evidence and reporters' emails.
"""Sealing with AES-256-GCM (`cryptography`). The key is never stored in the database: the
service derives one key per purpose from its secret key file (`derive_key`, HKDF-SHA256), and
passes it to the hotline's functions. A sealed blob is `version (1 byte) | nonce (12) |
ciphertext+tag`; `aad` binds it to what it belongs to (e.g. `b"report-email"`), so a blob
moved to another row or purpose fails to open."""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from childguard.errors import ChildguardError

_VERSION = b"\x01"
_NONCE = 12
KEY_BYTES = 32


class SealError(ChildguardError):
    """A sealed blob cannot be opened: wrong key, wrong purpose, or tampered with."""


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose (e.g. "hotline-evidence") from the service's secret."""
    if len(secret) < KEY_BYTES:
        raise ValueError(f"the secret is {len(secret)} bytes; want at least {KEY_BYTES}")
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose.encode("utf-8")
    )
    return hkdf.derive(secret)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """`plaintext` encrypted and authenticated under `key`, bound to `aad`."""
    nonce = os.urandom(_NONCE)
    return _VERSION + nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """The plaintext of a `seal` blob; SealError if the key, the aad or the blob is wrong."""
    if len(blob) < 1 + _NONCE + 16 or blob[:1] != _VERSION:
        raise SealError("not a sealed blob of this version")
    nonce, body = blob[1 : 1 + _NONCE], blob[1 + _NONCE :]
    try:
        return AESGCM(key).decrypt(nonce, body, aad)
    except InvalidTag:
        raise SealError("the sealed blob does not open: wrong key or purpose, or altered") from None
