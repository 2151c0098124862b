# Owns how passwords are checked and kept: the length rule and argon2id hashes.
"""Passwords. A password needs `MIN_LENGTH` to `MAX_LENGTH` characters; the store keeps only
its argon2id hash (argon2-cffi's `PasswordHasher`, RFC 9106 low-memory parameters), never the
password. `needs_rehash` says when a stored hash was made with older parameters."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import Parameters, PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from childguard.errors import InputFormatError

MIN_LENGTH = 12
MAX_LENGTH = 1024

_hasher = PasswordHasher()


def use_parameters(parameters: Parameters | None) -> None:
    """Hash new passwords with `parameters` from now on (None: the defaults again). Existing
    hashes verify with the parameters they were made with. Cheaper ones are for tests."""
    global _hasher
    _hasher = PasswordHasher() if parameters is None else PasswordHasher.from_parameters(parameters)
    _dummy_hash.cache_clear()


@cache
def _dummy_hash() -> str:
    """Verified against when there is no user, so that an unknown username takes as long as
    a wrong password."""
    return _hasher.hash(secrets.token_urlsafe(16))


class WeakPassword(InputFormatError):
    """A password that breaks the length rule."""


def check_password(password: str) -> str:
    """`password` if it keeps the length rule; WeakPassword saying what to fix otherwise."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(
            f"the password has {len(password)} characters; it needs at least {MIN_LENGTH}"
        )
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password is over {MAX_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    """The argon2id hash of a password that keeps the length rule."""
    return _hasher.hash(check_password(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` is the one `password_hash` was made from. With no hash (no such
    user) it still spends the time of one verification and answers False."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def generate_password() -> str:
    """A random password of 24 URL-safe characters (144 bits)."""
    return secrets.token_urlsafe(18)
