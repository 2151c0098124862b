"""The README's `bank import` examples run as written: the command lines are read from the
README itself, so an example that stops working, or changes, is caught."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from childguard.cli import app
from childguard.store import open_store

ROOT = Path(__file__).resolve().parents[2]


def _readme_command(starts: str) -> list[str]:
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith(starts):
            return shlex.split(line.split("#", 1)[0])[1:]
    pytest.fail(f"the README has no line starting {starts!r}")


def test_the_csv_import_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`childguard bank import hotline their.csv --map value=Hash --skip-invalid` on a CSV
    with no signal type column whose Hash column holds MD5 and SHA-1 digests: each value's
    type is detected as in plain lists, and the bad row is skipped."""
    args = _readme_command("childguard bank import hotline their.csv")
    assert args[:4] == ["bank", "import", "hotline", "their.csv"]
    md5 = hashlib.md5(b"readme").hexdigest()
    sha1 = hashlib.sha1(b"readme").hexdigest()
    (tmp_path / "their.csv").write_text(
        f"Ref,Hash,Category\n1,{md5},A\n2,{sha1},B\n3,not-a-hash,C\n"
    )
    db = tmp_path / "store.db"
    open_store(f"sqlite:///{db}").close()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHILDGUARD_DB", str(db))
    runner = CliRunner()
    create = _readme_command("childguard bank create hotline")
    assert runner.invoke(app, create).exit_code == 0
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "2 added" in text and "1 skipped" in text and "line 4" in text, text
