"""One set of conventions for every command, checked by walking the whole command tree.

Every command and subcommand of `childguard` shows its --help (exit 0); every option has a help
text; no value is named the Python way (`<bool>`, `<str>`); listing commands take `--format
table|json|jsonl|csv` with `--json` short for `--format json`; commands that write a file take
`-o/--output`; commands that hash take `-j/--workers` and `--archives/--no-archives`; destructive
commands take `--yes`. A new command that breaks one of these fails here. The start-up rules:
`childguard --help` imports no command module, and so neither SQLAlchemy, Scrapy nor OpenCV.
"""

from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

import childguard.cli as cli
from childguard.cli import COMMANDS, app, load_all

runner = CliRunner()
HEAVY = ("sqlalchemy", "scrapy", "cv2")
LIST_FORMATS = ("table", "json", "jsonl", "csv")

# Commands that write a file other than by -o (a folder of report files).
WRITES_FILES = {"hash", "match", "bank export", "audit export", "sightings export", "protect check"}
HASHING = {"hash", "match", "scan", "protect register"}
# Commands that hash but cannot yet spread the work: each says why. The test fails once the
# command takes -j, so that the exemption goes.
HASHING_WITHOUT_WORKERS: dict[str, str] = {}
# Listing commands whose output is not a table of rows.
NOT_LISTINGS: set[str] = set()
# Commands that destroy what cannot be had back: deletions, removals, and revoking a key (a
# revoked key is never usable again).
DESTRUCTIVE = re.compile(r"\b(delete|remove)$|^key revoke$")


def _tree() -> Iterator[tuple[str, Any]]:
    """(path, click command) for every command and group below the root."""
    load_all()
    root = get_command(app)
    ctx = root.make_context("childguard", ["--help"], resilient_parsing=True)

    def walk(prefix: str, command: Any) -> Iterator[tuple[str, Any]]:
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            path = f"{prefix} {name}".strip()
            yield path, sub
            if hasattr(sub, "commands"):
                yield from walk(path, sub)

    yield from walk("", root)


TREE = dict(_tree())
LEAVES = {path: cmd for path, cmd in TREE.items() if not hasattr(cmd, "commands")}


def _options(command: Any) -> dict[str, Any]:
    """Every option string of a command -> its parameter."""
    found: dict[str, Any] = {}
    for param in command.params:
        if param.param_type_name != "option":
            continue
        for opt in (*param.opts, *param.secondary_opts):
            found[opt] = param
    return found


def test_the_tree_is_every_command_module() -> None:
    modules = {m.name for m in pkgutil.iter_modules(cli.__path__) if m.name.startswith("cmd_")}
    assert modules == {module for module, _short in COMMANDS.values()}
    top = {path for path in TREE if " " not in path}
    assert top == set(COMMANDS)
    assert len(LEAVES) > 40


@pytest.mark.parametrize("path", ["", *sorted(TREE)])
def test_help_works_and_every_value_is_named_in_words(path: str) -> None:
    done = runner.invoke(app, [*path.split(), "--help"], env={"COLUMNS": "100"})
    assert done.exit_code == 0, done.output
    assert "Usage:" in done.stdout
    assert not re.search(r"<[a-zA-Z_\[\]| ]+>", done.stdout), done.stdout


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_every_option_and_argument_has_a_help_text(path: str) -> None:
    command = LEAVES[path]
    assert (command.help or "").strip(), f"{path} has no help"
    missing = [
        (param.opts or [param.name])[0]
        for param in command.params
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert not missing, f"{path}: no help for {missing}"


def test_the_root_list_says_what_each_command_says() -> None:
    root = get_command(app)
    ctx = root.make_context("childguard", ["--help"], resilient_parsing=True)
    for name, (_module, short) in COMMANDS.items():
        command = cli.load_command(name)
        own = command.get_short_help_str(limit=len(short)) if command.help else ""
        assert own.rstrip(".") == short.rstrip("."), (name, own, short)
    assert ctx is not None


@pytest.mark.parametrize(
    "path", sorted(p for p in LEAVES if p.endswith(" list") and p not in NOT_LISTINGS)
)
def test_listing_commands_take_the_four_formats_and_json(path: str, tmp_path: Path) -> None:
    options = _options(LEAVES[path])
    assert "--format" in options and "--json" in options, path
    assert {"-o", "--output"} <= set(options), path
    named = set(re.findall(r"[a-z]+", options["--format"].help or ""))
    assert set(LIST_FORMATS) <= named, path
    # The format is checked before anything else is looked at.
    db = ["--db", str(tmp_path / "x.db")] if "--db" in options else []
    done = runner.invoke(app, [*path.split(), "--format", "xml", *db])
    assert done.exit_code == 2
    assert "table, json, jsonl, csv" in done.stderr, done.output


@pytest.mark.parametrize("path", sorted(WRITES_FILES))
def test_commands_that_write_a_file_take_dash_o(path: str) -> None:
    options = _options(LEAVES[path])
    assert {"-o", "--output"} <= set(options), path


@pytest.mark.parametrize("path", sorted(HASHING))
def test_commands_that_hash_take_workers_and_archives_the_same_way(path: str) -> None:
    options = _options(LEAVES[path])
    if path in HASHING_WITHOUT_WORKERS:
        assert "-j" not in options, f"{path} takes -j now: drop its exemption"
        return
    assert {"-j", "--workers"} <= set(options), path
    if path != "protect register":
        archives = options["--archives"]
        assert archives.secondary_opts == ["--no-archives"] and archives.default is True, path


def test_destructive_commands_ask_unless_yes() -> None:
    destructive = [p for p in LEAVES if DESTRUCTIVE.search(p)]
    assert len(destructive) >= 6 and "key revoke" in destructive
    for path in destructive:
        assert "--yes" in _options(LEAVES[path]), path


def test_key_revoke_asks_first_and_keeps_the_key_on_no(tmp_path: Path) -> None:
    db = str(tmp_path / "keys.db")
    made = runner.invoke(app, ["key", "create", "--role", "match", "--db", db])
    assert made.exit_code == 0, made.output

    def usable() -> bool:
        listed = runner.invoke(app, ["key", "list", "--json", "--db", db])
        return bool(json.loads(listed.stdout)[0]["usable"])

    key_id = json.loads(runner.invoke(app, ["key", "list", "--json", "--db", db]).stdout)[0]["id"]
    refused = runner.invoke(app, ["key", "revoke", str(key_id), "--db", db], input="n\n")
    assert refused.exit_code == 2 and "revoke key" in refused.output, refused.output
    assert "nothing revoked" in refused.output and usable()
    missing = runner.invoke(app, ["key", "revoke", "99", "--db", db], input="y\n")
    assert missing.exit_code == 2 and "no API key with id 99" in missing.output
    assert "revoke key" not in missing.output
    agreed = runner.invoke(app, ["key", "revoke", str(key_id), "--db", db], input="y\n")
    assert agreed.exit_code == 0 and "revoked at" in agreed.output and not usable()
    again = runner.invoke(app, ["key", "revoke", str(key_id), "--db", db])
    assert again.exit_code == 0, again.output


def test_long_commands_offer_a_progress_bar() -> None:
    for path in ("hash", "match", "scan", "protect register", "crawl run"):
        assert "--progress" in _options(LEAVES[path]), path


def _modules_after(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_help_and_version_load_no_command_module_nor_heavy_library() -> None:
    code = (
        "import json, sys\n"
        "import childguard.cli as cli\n"
        "for args in (['--help'], ['--version']):\n"
        "    try:\n"
        "        cli.app(args)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print()\n"
        "print(json.dumps(sorted(m for m in sys.modules\n"
        "    if m.split('.')[0] in ('sqlalchemy', 'scrapy', 'cv2')\n"
        "    or m.startswith('childguard.cli.cmd_'))))\n"
    )
    assert _modules_after(code) == []


def test_a_command_loads_only_its_own_module() -> None:
    code = (
        "import json, sys\n"
        "import childguard.cli as cli\n"
        "try:\n"
        "    cli.app(['demo', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('childguard.cli.cmd_'))))\n"
    )
    assert _modules_after(code) == ["childguard.cli.cmd_demo"]


def test_every_command_s_help_loads_no_store_crawler_service_or_opencv() -> None:
    # `childguard bank --help` or `user add --help` answers at once: the store, Scrapy,
    # OpenCV, FastAPI and NumPy load only when a command runs.
    code = (
        "import json, sys\n"
        "import childguard.cli as cli\n"
        "for name in cli.COMMANDS:\n"
        "    for args in ([name, '--help'], [name, 'list', '--help']):\n"
        "        try:\n"
        "            cli.app(args)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "print()\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules\n"
        "    if m.split('.')[0] in\n"
        "    ('sqlalchemy', 'alembic', 'scrapy', 'cv2', 'fastapi', 'numpy')})))\n"
    )
    assert _modules_after(code) == []


def test_the_names_the_help_lists_are_the_library_s() -> None:
    from childguard.banks.formats import FORMATS
    from childguard.vocabulary import HASH_LIST_FORMATS

    assert tuple(FORMATS) == HASH_LIST_FORMATS
