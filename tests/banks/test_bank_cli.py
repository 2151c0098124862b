"""`childguard bank ...` end to end through the Typer app, on a SQLite store."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from childguard.cli import EXIT_OK, EXIT_USAGE, app
from childguard.store import open_store

runner = CliRunner()


def fake_hash(kind: str, i: int) -> str:
    digest = hashlib.sha256(f"{kind}-{i}".encode()).hexdigest()
    return {"md5": digest[:32], "sha1": (digest * 2)[:40]}.get(kind, digest)


def cg(db: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["bank", *args, "--db", str(db)])
    return result.exit_code, result.output


def test_bank_commands_end_to_end(tmp_path: Path) -> None:
    db = tmp_path / "cg.db"
    open_store(f"sqlite:///{db}").close()
    code, out = cg(db, "create", "hotline", "--kind", "known-abuse", "--threshold", "20", "--json")
    assert code == EXIT_OK and json.loads(out)["pdq_threshold"] == 20
    assert cg(db, "create", "hotline", "--kind", "allow")[0] == EXIT_USAGE

    lst = tmp_path / "list.txt"
    lst.write_text("\n".join(fake_hash("md5", i) for i in range(10)) + "\nbad-line\n")
    code, out = cg(db, "import", "hotline", str(lst))
    assert code == EXIT_USAGE and "line 11" in out
    code, out = cg(db, "import", "hotline", str(lst), "--skip-invalid", "--json")
    summary = json.loads(out)
    assert (summary["added"], summary["already_present"]) == (10, 0)
    assert summary["skipped"][0]["position"] == 11
    code, out = cg(db, "import", "hotline", str(lst), "--skip-invalid")
    assert code == EXIT_OK and "0 added, 10 already present, 1 skipped" in out

    pdq = tmp_path / "pdq.txt"
    pdq.write_text(fake_hash("pdq", 1) + "\n")
    code, out = cg(db, "import", "hotline", str(pdq))
    assert code == EXIT_USAGE and "--signal-type" in out
    assert cg(db, "import", "hotline", str(pdq), "-t", "pdq")[0] == EXIT_OK

    code, out = cg(db, "stats", "hotline", "--json")
    assert json.loads(out)["by_signal_type"] == {"md5": 10, "pdq": 1}
    code, out = cg(db, "list", "--json")
    assert [(b["name"], b["entries"]) for b in json.loads(out)] == [("hotline", 11)]
    code, out = cg(db, "show", "hotline")
    assert code == EXIT_OK and "hotline" in out

    out_csv = tmp_path / "out.csv"
    assert cg(db, "export", "hotline", str(out_csv), "-f", "csv")[0] == EXIT_OK
    assert len(out_csv.read_text().splitlines()) == 12
    code, out = cg(db, "export", "hotline", str(tmp_path / "x.txt"), "-f", "plain")
    assert code == EXIT_USAGE and "cannot mix" in out
    code, out = cg(db, "export", "hotline", "-", "-f", "te", "-t", "pdq")
    assert f"pdq {fake_hash('pdq', 1)}" in out.splitlines()

    assert cg(db, "create", "copy", "--kind", "known-abuse")[0] == EXIT_OK
    code, out = cg(db, "import", "copy", str(out_csv), "--json")
    assert json.loads(out)["added"] == 11

    code, out = cg(db, "delete", "hotline", "--yes")
    assert code == EXIT_OK and "11 entries" in out
    assert cg(db, "show", "hotline")[0] == EXIT_USAGE


def test_csv_mapping_option(tmp_path: Path) -> None:
    db = tmp_path / "cg.db"
    cg(db, "create", "m", "--kind", "protected")
    f = tmp_path / "org.csv"
    f.write_text(f"Photo,Hash\nteam.jpg,{fake_hash('pdq', 3)}\n")
    code, out = cg(db, "import", "m", str(f), "--map", "value=Hash,original_id=Photo", "-t", "pdq")
    assert code == EXIT_OK, out
    code, out = cg(db, "export", "m", "-", "-f", "csv")
    assert f"pdq,{fake_hash('pdq', 3)},org.csv,,team.jpg" in out
    code, out = cg(db, "import", "m", str(f), "--map", "colour=Hash")
    assert code == EXIT_USAGE and "unknown field" in out
