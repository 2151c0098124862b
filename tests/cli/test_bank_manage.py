"""Banks can be managed after creation: `bank update` changes the PDQ threshold, the thresholds
of other near types, the enabled flag, the description and the owner, each change audited and
each one what the next `match` uses. And the README's CSV import example works as written."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from childguard.banks import get_bank, update_bank
from childguard.cli import EXIT_FOUND, EXIT_OK, EXIT_USAGE, app
from childguard.pipeline import hash_file
from childguard.store import Store
from childguard.store.audit_log import list_events
from pdq_bits import flip
from sample_media import jpeg_bytes

runner = CliRunner()


def cg(*args: str) -> Any:
    return runner.invoke(app, list(args))


@pytest.fixture
def photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHILDGUARD_HOME", str(tmp_path / "home"))
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(7))
    return path


@pytest.fixture
def hotline(store_url: str, photo: Path, tmp_path: Path) -> str:
    """A known-abuse bank holding one PDQ hash 12 bits away from `photo`'s."""
    pdq = hash_file(photo).value("pdq")
    assert pdq is not None
    near = tmp_path / "near.txt"
    near.write_text(flip(pdq, 12, random.Random(18)) + "\n")
    assert (
        cg("bank", "create", "hotline", "--kind", "known-abuse", "--db", store_url).exit_code == 0
    )
    made = cg("bank", "import", "hotline", str(near), "-t", "pdq", "--db", store_url)
    assert made.exit_code == EXIT_OK, made.output
    return store_url


def _match(db: str, photo: Path) -> int:
    result = cg("match", "--db", db, "--plain", "--no-dihedral", "--json", str(photo))
    assert result.exit_code in (EXIT_OK, EXIT_FOUND), result.output
    return int(result.exit_code)


def test_update_threshold_and_enabled_change_what_match_finds(
    hotline: str, photo: Path, store: Store
) -> None:
    assert _match(hotline, photo) == EXIT_FOUND  # 12 bits, within the default 31
    tight = cg("bank", "update", "hotline", "--threshold", "8", "--db", hotline)
    assert tight.exit_code == EXIT_OK, tight.output
    assert "PDQ threshold 8" in tight.stdout
    assert _match(hotline, photo) == EXIT_OK
    cg("bank", "update", "hotline", "--threshold", "16", "--db", hotline)
    assert _match(hotline, photo) == EXIT_FOUND
    off = cg("bank", "update", "hotline", "--disable", "--db", hotline, "--json")
    assert off.exit_code == EXIT_OK and json.loads(off.stdout)["enabled"] is False
    assert _match(hotline, photo) == EXIT_OK
    assert cg("bank", "update", "hotline", "--enable", "--db", hotline).exit_code == EXIT_OK
    assert _match(hotline, photo) == EXIT_FOUND
    changes = [
        e.details["changes"]
        for e in list_events(store, action="bank.update", newest_first=False, limit=10)
        if e.details
    ]
    assert changes == [
        {"pdq_threshold": {"old": 31, "new": 8}},
        {"pdq_threshold": {"old": 8, "new": 16}},
        {"enabled": {"old": True, "new": False}},
        {"enabled": {"old": False, "new": True}},
    ]


def test_update_signal_thresholds_owner_and_description(hotline: str, store: Store) -> None:
    made = cg(
        "bank",
        "update",
        "hotline",
        "--signal-threshold",
        "vpdq=80,50",
        "--owner",
        "Hotline X",
        "--description",
        "from the national list",
        "--db",
        hotline,
        "--json",
    )
    assert made.exit_code == EXIT_OK, made.output
    bank = json.loads(made.stdout)
    assert bank["owner"] == "Hotline X" and bank["description"] == "from the national list"
    assert bank["thresholds"] == {"vpdq": {"query_percent": 80.0, "bank_percent": 50.0}}
    back = cg("bank", "update", "hotline", "--signal-threshold", "vpdq=default", "--db", hotline)
    assert back.exit_code == EXIT_OK, back.output
    assert get_bank(store, "hotline").thresholds is None
    event = list_events(store, action="bank.update", limit=1, newest_first=True)[0]
    assert event.details is not None
    assert event.details["changes"]["thresholds"]["new"] is None


def test_update_refuses_bad_values_and_changes_nothing(hotline: str, store: Store) -> None:
    for args, says in (
        (["--threshold", "300"], "outside 0-256"),
        (["--signal-threshold", "md5=3"], "exact"),
        (["--signal-threshold", "pdq=20"], "--threshold"),
        (["--signal-threshold", "vpdq"], "TYPE=VALUE"),
        ([], "nothing to change"),
    ):
        result = cg("bank", "update", "hotline", *args, "--db", hotline)
        assert result.exit_code == EXIT_USAGE, (args, result.output)
        assert says in result.stderr, (args, result.stderr)
    assert get_bank(store, "hotline").pdq_threshold == 31
    assert list_events(store, action="bank.update", limit=5) == []


def test_threshold_changes_keep_the_other_types(store: Store) -> None:
    from childguard.banks import create_bank

    create_bank(store, "b", "known-abuse", thresholds={"vpdq": "80,50"}, actor="t")
    update_bank(store, "b", actor="t", threshold_changes={"vpdq": "70,40"})
    assert get_bank(store, "b").thresholds == {
        "vpdq": {"query_percent": 70.0, "bank_percent": 40.0}
    }


def test_readme_csv_import_example_works_as_written(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`childguard bank import hotline their.csv --map value=Hash --skip-invalid`, on a CSV whose
    `Hash` column holds MD5 digests and no column says the type."""
    monkeypatch.chdir(tmp_path)
    md5s = [hashlib.md5(f"photo {i}".encode()).hexdigest() for i in range(3)]
    Path("their.csv").write_text(
        "Hash,Category,Note\n"
        + "".join(f"{h.upper()},A,seen {i}\n" for i, h in enumerate(md5s))
        + "not-a-hash,B,typo\n"
    )
    assert (
        cg("bank", "create", "hotline", "--kind", "known-abuse", "--db", store_url).exit_code == 0
    )
    result = cg(
        "bank", "import", "hotline", "their.csv", "--map", "value=Hash", "--skip-invalid",
        "--db", store_url, "--json",
    )  # fmt: skip
    assert result.exit_code == EXIT_OK, result.output
    summary = json.loads(result.stdout)
    assert (summary["added"], len(summary["skipped"])) == (3, 1)
    assert summary["skipped"][0]["position"] == 5
    stats = json.loads(cg("bank", "stats", "hotline", "--json", "--db", store_url).stdout)
    assert stats["by_signal_type"] == {"md5": 3}
    assert stats["by_classification"] == {"A": 3}
    # The same file without --skip-invalid is all or nothing, naming the bad line.
    strict = cg("bank", "import", "hotline", "their.csv", "--map", "value=Hash", "--db", store_url)
    assert strict.exit_code == EXIT_USAGE and "line 5" in strict.stderr
