"""The CLI tells the truth about its store: reading commands refuse a store that does not exist
(naming where they looked, creating nothing), only creating commands make one and say so, a
SQLite store's index lives beside it, and a missing input path is the same usage error in
`hash`, `match` and `scan`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from childguard.cli import EXIT_OK, EXIT_USAGE, app
from childguard.config import store_index_dir
from childguard.matcher.bank_index import index_path
from childguard.store import open_store
from childguard.store.db import StoreMissing
from sample_media import jpeg_bytes

runner = CliRunner()
PASSWORD = "a long enough password"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir of this test's own, no CHILDGUARD_DB, and the test's folder as working folder."""
    home = tmp_path / "home"
    monkeypatch.setenv("CHILDGUARD_HOME", str(home))
    monkeypatch.delenv("CHILDGUARD_DB", raising=False)
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(1))
    return path


def _read_commands(tmp_path: Path, photo: Path) -> dict[str, list[str]]:
    album = tmp_path / "album"
    album.mkdir(exist_ok=True)
    hashes = tmp_path / "list.txt"
    hashes.write_text("d41d8cd98f00b204e9800998ecf8427e\n")
    return {
        "match": ["match", str(photo)],
        "scan": ["scan", str(photo), "--report", str(tmp_path / "report")],
        "bank list": ["bank", "list"],
        "bank import": ["bank", "import", "hotline", str(hashes)],
        "org list": ["org", "list"],
        "protect register": ["protect", "register", str(album), "--org", "Scouts"],
        "audit list": ["audit", "list"],
        "user list": ["user", "list"],
        "key list": ["key", "list"],
        "watch list": ["crawl", "watch", "list"],
        "sightings list": ["sightings", "list"],
    }


READS = [
    "match",
    "scan",
    "bank list",
    "bank import",
    "org list",
    "protect register",
    "audit list",
    "user list",
    "key list",
    "watch list",
    "sightings list",
]


@pytest.mark.parametrize("command", READS)
def test_a_reading_command_refuses_a_missing_store_and_names_it(
    tmp_path: Path, photo: Path, command: str
) -> None:
    typo = tmp_path / "typo.db"
    args = _read_commands(tmp_path, photo)[command]
    done = runner.invoke(app, [*args, "--db", str(typo)])
    assert done.exit_code == EXIT_USAGE, done.output
    assert f"no store at {typo}" in done.output
    assert "bank create" in done.output  # how to make one
    assert not typo.exists()
    assert not typo.with_name("typo.db.index").exists()


def test_the_default_store_is_not_made_by_a_read(_home: Path, photo: Path) -> None:
    done = runner.invoke(app, ["match", str(photo)])
    assert done.exit_code == EXIT_USAGE, done.output
    assert f"no store at {_home / 'childguard.db'}" in done.output
    assert not (_home / "childguard.db").exists()


def test_a_path_that_is_not_a_url_is_not_made_into_a_file(tmp_path: Path, photo: Path) -> None:
    done = runner.invoke(app, ["match", str(photo), "--db", "not a url"])
    assert done.exit_code == EXIT_USAGE, done.output
    assert f"no store at {tmp_path / 'not a url'}" in done.output
    assert not (tmp_path / "not a url").exists()


def test_a_relative_sqlite_url_is_named_by_its_absolute_path(tmp_path: Path, photo: Path) -> None:
    done = runner.invoke(app, ["match", str(photo), "--db", "sqlite:///data/x.db"])
    assert done.exit_code == EXIT_USAGE, done.output
    assert f"no store at {tmp_path / 'data' / 'x.db'}" in done.output
    assert "relative to the working folder" in done.output
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("url", ["foo://host/db", "http://example.org/x.db", "sqlite:/x"])
def test_a_url_of_no_known_database_says_what_is_accepted(photo: Path, url: str) -> None:
    done = runner.invoke(app, ["match", str(photo), "--db", url])
    assert done.exit_code == EXIT_USAGE, done.output
    assert "sqlite:////ABSOLUTE/PATH.db" in done.output
    assert "postgresql" in done.output
    assert "Traceback" not in done.output


def test_an_empty_file_is_not_a_store(tmp_path: Path, photo: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    done = runner.invoke(app, ["bank", "list", "--db", str(empty)])
    assert done.exit_code == EXIT_USAGE, done.output
    assert "holds no childguard schema" in done.output
    assert empty.stat().st_size == 0


CREATES = {
    "bank create": (["bank", "create", "hotline", "--kind", "known-abuse"], ""),
    "org add": (["org", "add", "Scouts"], ""),
    "user add": (["user", "add", "alice", "--password-stdin"], PASSWORD + "\n"),
    "key create": (["key", "create", "--role", "match"], ""),
}


@pytest.mark.parametrize("command", list(CREATES))
def test_a_creating_command_makes_the_store_and_says_so(tmp_path: Path, command: str) -> None:
    db = tmp_path / "new" / "cg.db"
    args, stdin = CREATES[command]
    made = runner.invoke(app, [*args, "--db", str(db)], input=stdin)
    assert made.exit_code == EXIT_OK, made.output
    assert f"created a new store at {db}" in made.stderr
    assert db.is_file()
    listed = runner.invoke(app, ["bank", "list", "--db", str(db)])
    assert listed.exit_code == EXIT_OK, listed.output
    assert "created a new store" not in listed.output


def test_a_creating_command_on_an_existing_store_says_nothing_of_creating(
    store_url: str,
) -> None:
    made = runner.invoke(app, ["bank", "create", "b", "--kind", "allow", "--db", store_url])
    assert made.exit_code == EXIT_OK, made.output
    assert "created a new store" not in made.output


def test_open_store_without_create_writes_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "sub" / "s.db"
    with pytest.raises(StoreMissing) as raised:
        open_store(str(missing), create=False)
    assert raised.value.where == str(missing)
    assert not (tmp_path / "sub").exists()
    with open_store(str(missing)) as made:
        assert made.created
    with open_store(str(missing), create=False) as again:
        assert not again.created


def _bank_with_photo(db: Path, photo: Path) -> None:
    """A store at `db` with a bank holding the photo's PDQ hash."""
    from childguard.banks import EntryRecord, add_entries
    from childguard.pipeline import hash_bytes

    made = runner.invoke(app, ["bank", "create", "b", "--kind", "known-abuse", "--db", str(db)])
    assert made.exit_code == EXIT_OK, made.output
    value = hash_bytes(photo.read_bytes()).value("pdq")
    assert value is not None
    with open_store(str(db), create=False) as store:
        add_entries(store, "b", [EntryRecord("pdq", value)], actor="test")


def test_the_index_lives_beside_its_sqlite_store(tmp_path: Path, _home: Path, photo: Path) -> None:
    db = tmp_path / "elsewhere" / "cg.db"
    _bank_with_photo(db, photo)
    found = runner.invoke(app, ["match", str(photo), "--db", str(db)])
    assert found.exit_code == 3, found.output
    assert (tmp_path / "elsewhere" / "cg.db.index" / "pdq" / "manifest.json").is_file()
    assert not (_home / "index").exists()
    with open_store(str(db), create=False) as store:
        assert index_path(store) == tmp_path / "elsewhere" / "cg.db.index" / "pdq"


def test_two_stores_with_one_relative_url_have_two_indexes(
    tmp_path: Path, photo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        made = runner.invoke(
            app, ["bank", "create", "b", "--kind", "allow", "--db", "sqlite:///s.db"]
        )
        assert made.exit_code == EXIT_OK, made.output
        assert f"created a new store at {tmp_path / folder / 's.db'}" in made.stderr
        assert "four, sqlite:////ABSOLUTE/PATH.db" in made.stderr
        assert runner.invoke(app, ["match", str(photo), "--db", "sqlite:///s.db"]).exit_code == 0
    for folder in ("a", "b"):
        assert (tmp_path / folder / "s.db.index" / "pdq" / "manifest.json").is_file()


def test_a_store_that_is_not_a_file_keeps_its_index_in_the_data_dir(_home: Path) -> None:
    url = "postgresql+psycopg://cg@db.example/childguard"
    first = store_index_dir(url)
    assert first.parent == _home / "index"
    assert store_index_dir("postgresql+psycopg://cg@db.example/other") != first


@pytest.mark.parametrize(
    "args",
    [
        ["hash"],
        ["match"],
        ["scan", "--report", "report"],
    ],
)
def test_a_missing_input_path_is_a_usage_error_everywhere(
    tmp_path: Path, store_url: str, photo: Path, args: list[str]
) -> None:
    gone = tmp_path / "no-such.jpg"
    command = [args[0], str(photo), str(gone), *args[1:]]
    if args[0] != "hash":
        command += ["--db", store_url]
    done = runner.invoke(app, command)
    assert done.exit_code == EXIT_USAGE, done.output
    assert f"no such file or folder: {gone}" in done.output


def test_a_file_that_is_not_a_database_is_refused_without_a_traceback(tmp_path: Path) -> None:
    junk = tmp_path / "notes.db"
    junk.write_text("shopping list\n")
    done = runner.invoke(app, ["bank", "list", "--db", str(junk)])
    assert done.exit_code == EXIT_USAGE, done.output
    assert f"cannot open the store at {junk}" in done.output
    assert junk.read_text() == "shopping list\n"


@pytest.mark.postgres
def test_a_postgresql_database_without_the_schema_is_refused_by_a_read(
    postgres_cluster: object,
) -> None:
    url: str = postgres_cluster.create_database("x18_no_schema")  # type: ignore[attr-defined]
    done = runner.invoke(app, ["bank", "list", "--db", url])
    assert done.exit_code == EXIT_USAGE, done.output
    assert "holds no childguard schema" in done.output
    made = runner.invoke(app, ["bank", "create", "b", "--kind", "allow", "--db", url])
    assert made.exit_code == EXIT_OK, made.output
    assert "created a new store at postgresql" in made.stderr
    assert runner.invoke(app, ["bank", "list", "--db", url]).exit_code == EXIT_OK


@pytest.mark.parametrize("db", ["not a url", "hotline"])
def test_a_creating_command_makes_no_file_from_a_name_that_is_no_database(
    tmp_path: Path, db: str
) -> None:
    done = runner.invoke(app, ["bank", "create", "b", "--kind", "allow", "--db", db])
    assert done.exit_code == EXIT_USAGE, done.output
    assert f"refusing to make a new store at {tmp_path / db}" in done.output
    assert ".db" in done.output
    assert not (tmp_path / db).exists()


def test_a_store_whose_index_cannot_sit_beside_it_keeps_it_in_the_data_dir(
    tmp_path: Path, _home: Path
) -> None:
    db = tmp_path / "s.db"
    (tmp_path / "s.db.index").write_text("not a folder")  # as unwritable as a read-only mount
    first = store_index_dir(f"sqlite:///{db}")
    assert first.parent == _home / "index" and first.is_dir()
    assert store_index_dir(f"sqlite:///{tmp_path / 't.db'}") == tmp_path / "t.db.index"


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (["user", "add", "carol", "--role", "root", "--password-stdin"], ""),
        (["org", "add", "Scouts", "--webhook", "ftp://nowhere"], ""),
        (["key", "create", "--role", "root"], ""),
    ],
)
def test_a_creating_command_that_fails_leaves_no_store(
    tmp_path: Path, args: list[str], stdin: str
) -> None:
    db = tmp_path / "new.db"
    done = runner.invoke(app, [*args, "--db", str(db)], input=stdin)
    assert done.exit_code == EXIT_USAGE, done.output
    assert "created a new store" not in done.output
    assert not db.exists()
    assert not list(tmp_path.glob("new.db*"))
