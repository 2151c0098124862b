"""What a small `childguard hash` loads, and that what makes it start fast changes nothing.

The start-up goal (issue 18: a small `hash` under 0.6 s) is measured by bench/bench_startup.py;
these tests guard it cheaply, by the modules a real `hash` run leaves in `sys.modules` (no
store, crawler, pydantic, structlog or Rich), not by a timer. The plain coercion of
`childguard.cli.coerce` must give every parameter of every command the value Typer's own
pydantic coercion gives, and the same error where Typer refuses one; the lazy loggers of
`childguard.log` must drop what is below the level without loading structlog, and print the
rest as before.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer._click import Context
from typer._coercion import build_runtime_param
from typer.main import get_command

from childguard.cli import app, load_all
from childguard.cli.coerce import PlainRuntimeParam
from sample_media import jpeg_bytes

# Libraries the hash path must not load: the store, the crawler, the service, and what
# Typer and structlog would pull in were they not kept lazy.
NOT_ON_THE_HASH_PATH = (
    "sqlalchemy",
    "scrapy",
    "twisted",
    "fastapi",
    "pydantic",
    "structlog",
    "rich",
    "typer._adapters",
)


def _run(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


HASH_AND_LIST = """
import json, sys
from childguard.cli import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _loaded(stderr: str) -> tuple[int, list[str]]:
    found = json.loads(stderr.strip().splitlines()[-1])
    return found["exit"], found["modules"]


def _heavy(modules: list[str]) -> list[str]:
    return [
        m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_ON_THE_HASH_PATH)
    ]


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("startup") / "photo.jpg"
    path.write_bytes(jpeg_bytes(3))
    return path


def test_hash_of_a_photo_loads_no_store_crawler_pydantic_structlog_or_rich(photo: Path) -> None:
    done = _run(HASH_AND_LIST, "hash", str(photo), "-j", "1", "--no-progress")
    code, modules = _loaded(done.stderr)
    assert code == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["path"] == str(photo) and len(record["pdq"]) == 64 and record["error"] is None
    assert "hashed 1 files, 0 failed" in done.stderr
    assert "childguard.pipeline" in modules and "numpy" in modules  # it did hash
    assert _heavy(modules) == []


def test_usage_errors_keep_typer_s_words_and_exit_code(photo: Path) -> None:
    done = _run(HASH_AND_LIST, "hash", str(photo), "-j", "0")
    code, modules = _loaded(done.stderr)
    assert code == 2 and "Invalid value for '--workers' / '-j'" in done.stderr, done.stderr
    assert "typer._adapters" in modules  # the refusal came from Typer's own coercion
    done = _run(HASH_AND_LIST, "hash", str(photo), "--format", "xml")
    code, _modules = _loaded(done.stderr)
    assert code == 2 and "'xml' is not one of 'jsonl', 'csv'" in done.stderr, done.stderr
    done = _run(HASH_AND_LIST, "hash", str(photo.with_name("missing.jpg")))
    code, modules = _loaded(done.stderr)
    assert code == 2 and "no such file or folder" in done.stderr, done.stderr


def test_hash_of_a_photo_loads_no_opencv(photo: Path) -> None:
    done = _run(HASH_AND_LIST, "hash", str(photo), "-j", "1", "--no-progress")
    code, modules = _loaded(done.stderr)
    assert code == 0, done.stderr
    assert "cv2" not in modules


def _params() -> Iterator[tuple[str, Any, Any]]:
    """(command path, click command, parameter) for every parameter of every command."""
    load_all()

    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any, Any]]:
        for param in command.params:
            yield prefix or "childguard", command, param
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(f"{prefix} {name}".strip(), sub)

    root = get_command(app)
    ctx = root.make_context("childguard", ["--help"], resilient_parsing=True)
    for name in root.list_commands(ctx):
        yield from walk(name, root.get_command(ctx, name))
    for param in root.params:
        yield "childguard", root, param


# Values a user might type, for each kind of parameter; the good and the bad.
SAMPLES: dict[str, tuple[Any, ...]] = {
    "str": ("abc", "", " spaced ", "ü", "-"),
    "int": ("0", "7", "1", "-3", "+3", " 4", "1e3", "007", "abc", "", "9" * 30, 5, True),
    "float": ("1.5", "2", "0", "-1", ".5", "1e3", "abc", " 3", 2, 2.5),
    "bool": (True, False, "yes", "0"),
    "path": ("a/b.db", "", "-", "/definitely/not/here", "."),
    "enum": ("jsonl", "csv", "JSONL", "xml", ""),
}


def _kind(annotation: Any) -> str | None:
    from enum import Enum
    from typing import get_args, get_origin

    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    for kind, python in (("str", str), ("int", int), ("float", float), ("bool", bool)):
        if annotation is python:
            return kind
    if isinstance(annotation, type) and issubclass(annotation, Path):
        return "path"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "enum"
    return None


def _outcome(runtime: Any, value: Any, param: Any, ctx: Any) -> tuple[str, Any]:
    try:
        return "value", runtime.coerce(value, param=param, ctx=ctx)
    except Exception as exc:
        return type(exc).__name__, str(exc)


def test_plain_coercion_gives_what_typer_gives_for_every_parameter() -> None:
    compared = 0
    for path, command, param in _params():
        runtime = param._runtime_param
        assert isinstance(runtime, PlainRuntimeParam), (path, param.name)
        descriptor = param.type_descriptor
        kind = _kind(descriptor.annotation)
        if kind is None:
            continue
        typer_own = build_runtime_param(descriptor)
        ctx = Context(command)
        values: list[Any] = [None, param.default, *SAMPLES[kind]]
        if kind == "enum":
            values += list(_enum_of(descriptor.annotation))
        if descriptor.is_list:
            values = [None, (), *((v,) for v in SAMPLES[kind]), tuple(SAMPLES[kind][:2])]
        for value in values:
            ours = _outcome(runtime, value, param, ctx)
            theirs = _outcome(typer_own, value, param, ctx)
            assert ours == theirs, (path, param.name, value)
            if ours[0] == "value" and value is not None:
                assert type(ours[1]) is type(theirs[1]), (path, param.name, value)
            compared += 1
    assert compared > 1000


def _enum_of(annotation: Any) -> tuple[Any, ...]:
    from typing import get_args, get_origin

    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
    return tuple(annotation)


LOGS = """
import sys
from childguard import log
log.configure(level="WARNING", json=True)
logger = log.get_logger("childguard.test")
logger.info("quiet", n=1)
logger.debug("quieter")
print("after-info", "structlog" in sys.modules, file=sys.stderr, flush=True)
logger.warning("loud", n=2)
print("after-warning", "structlog" in sys.modules, file=sys.stderr, flush=True)
log.configure(level="INFO", json=True)
logger.info("now-shown", n=3)
logger.debug("still-hidden")
"""


def test_loggers_load_structlog_only_for_a_line_that_passes_the_level() -> None:
    done = _run(LOGS)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == "after-info False"
    loud = json.loads(lines[1])
    assert loud["event"] == "loud" and loud["n"] == 2 and loud["level"] == "warning"
    assert "timestamp" in loud
    assert lines[2] == "after-warning True"
    shown = json.loads(lines[3])
    assert shown["event"] == "now-shown" and shown["level"] == "info"
    assert len(lines) == 4
