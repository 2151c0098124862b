"""`childguard org ...` and `childguard protect ...` end to end on a SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from protect_helpers import synthetic_photo
from typer.testing import CliRunner

from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_org_and_protect_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "cg.db")
    album = tmp_path / "album"
    album.mkdir()
    synthetic_photo(album / "a.jpg", 1)
    synthetic_photo(album / "b.png", 2)
    (album / "c.jpg").write_bytes(b"\xff\xd8\xff garbage")

    code, text = run("org", "add", "Scouts", "--email", "x@scouts.example", "--db", db)
    assert code == EXIT_OK, text
    assert run("org", "add", "Scouts", "--db", db)[0] == EXIT_USAGE
    code, text = run(
        "protect", "register", str(album), "--org", "Scouts", "--title", "a.jpg=Camp", "--db", db
    )
    assert code == EXIT_PARTIAL and "registered 2" in text and "failed 1" in text
    code, text = run("protect", "list", "--org", "Scouts", "--json", "--db", db)
    photos = json.loads(text)
    assert {p["file_name"] for p in photos} == {"a.jpg", "b.png"}
    a = next(p for p in photos if p["file_name"] == "a.jpg")
    assert a["title"] == "Camp"
    code, text = run("protect", "show", str(a["id"]), "--db", db)
    assert code == EXIT_OK and {s["role"] for s in json.loads(text)["signals"]} >= {"pdq", "sha256"}
    code, text = run("org", "list", "--json", "--db", db)
    assert json.loads(text)[0]["photos"] == 2
    assert run("protect", "remove", str(a["id"]), "--yes", "--db", db)[0] == EXIT_OK
    assert run("protect", "show", str(a["id"]), "--db", db)[0] == EXIT_USAGE
    assert run("protect", "register", str(album), "--org", "Nobody", "--db", db)[0] == EXIT_USAGE


def test_protect_check_exit_codes(tmp_path: Path) -> None:
    from PIL import Image

    clean = tmp_path / "clean.png"
    Image.new("RGB", (20, 20)).save(clean)
    assert run("protect", "check", str(clean))[0] == EXIT_OK
    tagged = tmp_path / "t.jpg"
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (51.0, 3.0, 0.0), 3: "E", 4: (3.0, 43.0, 30.0)})
    Image.new("RGB", (20, 20)).save(tagged, exif=exif)
    code, text = run("protect", "check", str(tagged))
    assert code == EXIT_FOUND and "GPS" in text
    code, text = run("protect", "check", str(tagged), "--strip", str(tmp_path / "out.jpg"))
    assert code == EXIT_OK and "clean" in text
