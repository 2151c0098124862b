# Owns the service's secret key: its file, made on first start, and the checks when it is read.
"""The service's secret key: 32 random bytes in `secret_key_file` (default: the data dir's
`secret.key`), made on first start with mode 0600. Secrets the service hands out (each
webhook subscription's signing secret) are derived from it, so none of them is stored.

A key file that cannot be read, that others may read or write (any group or other permission
bit), or that is shorter than 32 bytes stops the service with an error naming the file.
Several workers starting at once make one key: the first to link its file into place wins and
the others read it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from childguard import config
from childguard.errors import ChildguardError
from childguard.service.config import Settings

KEY_BYTES = 32
FILE_NAME = "secret.key"


class SecretKeyError(ChildguardError):
    """The secret key file cannot be used; the message names the file and what to fix."""


def secret_key_path(settings: Settings) -> Path:
    """Where the settings put the secret key."""
    if settings.secret_key_file is not None:
        return Path(settings.secret_key_file)
    base = Path(settings.data_dir) if settings.data_dir is not None else config.data_dir()
    return base / FILE_NAME


def _read(path: Path) -> bytes:
    try:
        info = path.stat()
    except OSError as exc:
        raise SecretKeyError(f"{path}: cannot read the secret key: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretKeyError(f"{path}: the secret key is not a regular file")
    if info.st_mode & 0o077:
        raise SecretKeyError(
            f"{path}: the secret key may be read by others (mode {stat.S_IMODE(info.st_mode):o});"
            f" run chmod 600 {path}"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SecretKeyError(f"{path}: cannot read the secret key: {exc.strerror}") from None
    if len(data) < KEY_BYTES:
        raise SecretKeyError(
            f"{path}: the secret key is {len(data)} bytes, want at least {KEY_BYTES}; "
            "remove the file to make a new one (subscribers then need their new secrets)"
        )
    return data


def load_or_create(path: Path) -> bytes:
    """The key in `path`, made there first (mode 0600) when there is none."""
    path = Path(path)
    if path.exists():
        return _read(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(KEY_BYTES))
            with contextlib.suppress(FileExistsError):  # another worker made it first
                os.link(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as exc:
        raise SecretKeyError(f"{path}: cannot create the secret key: {exc.strerror}") from None
    return _read(path)


def service_secret_key(settings: Settings) -> bytes:
    """The key the settings name, made on first start."""
    return load_or_create(secret_key_path(settings))
