"""A throwaway PostgreSQL cluster for tests and benchmarks: initdb, start, create databases, stop.

PostgreSQL refuses to run as root, so as root the cluster runs as an unprivileged user
(`childguard-test`, created if absent, else `nobody`) through `runuser`. Data and the unix
socket live in a private temporary directory that is removed on `stop()`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from childguard.errors import ChildguardError

SEARCH_DIRS = (
    "/usr/lib/postgresql/17/bin",
    "/usr/lib/postgresql/16/bin",
    "/usr/lib/postgresql/15/bin",
)
CLUSTER_USER = "childguard-test"
SUPERUSER = "childguard"


class PostgresUnavailable(ChildguardError):
    """The throwaway cluster could not be set up; the message says which step failed and why."""


def find_pg_bin(program: str = "initdb") -> Path:
    """The directory holding PostgreSQL's server programs (PATH first, then Debian's layout)."""
    found = shutil.which(program)
    if found:
        return Path(found).resolve().parent
    for d in SEARCH_DIRS:
        if (Path(d) / program).exists():
            return Path(d)
    raise PostgresUnavailable(
        f"PostgreSQL server program {program!r} not found on PATH or in {', '.join(SEARCH_DIRS)}"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_as_user() -> str | None:
    """The user to run the server as when we are root, creating it if needed; None if not root."""
    if os.geteuid() != 0:
        return None
    if subprocess.run(["id", "-u", CLUSTER_USER], capture_output=True).returncode == 0:
        return CLUSTER_USER
    made = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", CLUSTER_USER],
        capture_output=True,
        text=True,
    )
    if made.returncode == 0:
        return CLUSTER_USER
    return "nobody"


class ThrowawayPostgres:
    """One private PostgreSQL cluster on 127.0.0.1 and a unix socket in a temp dir."""

    def __init__(self) -> None:
        self.bin = find_pg_bin()
        self.user = _run_as_user()
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="childguard-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self.started = False

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else list(args)

    def _check(self, step: str, *args: str) -> None:
        done = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{step} failed (exit {done.returncode}): "
                + (done.stderr.strip() or done.stdout.strip())
                + (f"\nserver log:\n{log}" if log else "")
            )

    def start(self) -> ThrowawayPostgres:
        self.socket_dir.mkdir()
        if self.user:
            shutil.chown(self.root, user=self.user)
            shutil.chown(self.socket_dir, user=self.user)
        self._check(
            "initdb",
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        opts = (
            f"-F -c fsync=off -c synchronous_commit=off -c full_page_writes=off -p {self.port}"
            f" -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.socket_dir}"
            " -c max_connections=100"
        )
        self._check(
            "pg_ctl start",
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        )
        self.started = True
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql)

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a database (empty, or a copy of `template`) and return its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        for n in (name, template or "x"):
            if not n.replace("_", "").isalnum():
                raise ValueError(f"bad database name {n!r}")
        copy = f' TEMPLATE "{template}"' if template else ""
        self._admin(f'CREATE DATABASE "{name}"{copy} STRATEGY = FILE_COPY')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.started:
            subprocess.run(
                self._cmd(
                    str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                ),
                capture_output=True,
                timeout=60,
            )
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
