"""Each registered photo keeps its warning with its signature (`ProtectedPhoto.warning`): a
photo signed by an earlier version (no square views) is `outdated` until it is registered
again; the organisation's counts and photo lists (library, CLI, API) count and filter on it;
migration 0017 gives the photos stored before theirs from their stored signatures. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect
from typer.testing import CliRunner

from childguard.cli import EXIT_OK, EXIT_USAGE, app
from childguard.errors import InputFormatError
from childguard.protect.organisations import create_organisation, get_organisation
from childguard.protect.register import (
    ANY_WARNING,
    FEW,
    OUTDATED,
    PLAIN,
    compute_photo_signature,
    list_photos,
    photo_warning,
    register_photos,
    store_signature,
)
from childguard.protect.tenancy import organisation_summary, photos_page
from childguard.signals.content import ContentSignals
from childguard.store import Store
from childguard.store.db import alembic_config, migration_connection
from childguard.store.protect_models import ProtectedPhoto
from sample_media import plain_photo, two_blobs_photo

PHOTOS = Path(__file__).resolve().parents[2] / ".cache" / "photos"


def _without_squares(record: ContentSignals) -> ContentSignals:
    """The record as a client of an earlier version sends it: no square views."""
    robust = dict((record.features or {})["robust"])
    del robust["squares"]
    record.features = {**(record.features or {}), "robust": robust}
    return record


def _real(folder: Path) -> Path:
    """A real photo the matcher can find, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(sorted(PHOTOS.glob("mate-backgrounds/*.jpg"))[0], folder / "real.jpg"))


def _registered(store: Store, tmp_path: Path, name: str = "Warned") -> dict[str, int]:
    """An organisation whose real photo came from an earlier version's client, and whose
    plain and few-keypoint photos were registered now: file name -> photo id."""
    album = tmp_path / "album"
    album.mkdir(parents=True)
    plain_photo(album / "gradient.jpg")
    two_blobs_photo(album / "blobs.jpg")
    record = _without_squares(compute_photo_signature(_real(tmp_path / "older")))
    with store.session() as s:
        org = create_organisation(s, name)
        assert store_signature(s, org, record)[1] == "registered"
        assert len(register_photos(s, album, org).registered) == 2
        return {p.file_name: p.id for p in list_photos(s, org)}


def test_the_writer_keeps_each_photos_warning_and_registering_again_clears_outdated(
    store: Store, tmp_path: Path
) -> None:
    ids = _registered(store, tmp_path)
    with store.session() as s:
        stored = {name: s.get(ProtectedPhoto, i) for name, i in ids.items()}
        codes = {name: p.warning for name, p in stored.items() if p is not None}
        assert codes == {"real.jpg": OUTDATED, "gradient.jpg": PLAIN, "blobs.jpg": FEW}
        for name, photo in stored.items():  # the stored code is the one explained
            assert photo is not None
            warning = photo_warning(photo)
            assert warning is not None and warning.code == codes[name]
        outdated = photo_warning(stored["real.jpg"])  # type: ignore[arg-type]
        assert outdated is not None and "register it again" in outdated.reason
    org = _org(store, "Warned")
    assert organisation_summary(store, org)["photo_warnings"] == {
        OUTDATED: 1,
        PLAIN: 1,
        FEW: 1,
    }
    # Registered again from the original: signed anew, and nothing left to warn of.
    with store.session() as s:
        again = register_photos(s, _real(tmp_path / "again"), get_organisation(s, "Warned"))
        assert [p.id for p in again.resigned] == [ids["real.jpg"]] and again.warnings == []
        photo = s.get(ProtectedPhoto, ids["real.jpg"])
        assert photo is not None and photo.warning is None and photo_warning(photo) is None
    assert organisation_summary(store, org)["photo_warnings"][OUTDATED] == 0


def _org(store: Store, name: str) -> Any:
    with store.session() as s:
        return get_organisation(s, name)


def test_the_photo_lists_filter_on_the_warning(store: Store, tmp_path: Path) -> None:
    ids = _registered(store, tmp_path)
    other = _registered(store, tmp_path / "other", name="Other")
    org = _org(store, "Warned")
    for warning, names in (
        (None, {"real.jpg", "gradient.jpg", "blobs.jpg"}),
        (ANY_WARNING, {"real.jpg", "gradient.jpg", "blobs.jpg"}),
        (OUTDATED, {"real.jpg"}),
        (PLAIN, {"gradient.jpg"}),
        (FEW, {"blobs.jpg"}),
    ):
        page = photos_page(store, org, warning=warning)
        assert {p.file_name for p in page} == names, warning
        assert {p.id for p in page} <= set(ids.values())  # never another organisation's
    assert [p.id for p in photos_page(store, org, warning=ANY_WARNING, limit=1)] == [
        min(ids.values())
    ]
    with store.session() as s:
        everyone = list_photos(s, warning=OUTDATED)
        assert {p.id for p in everyone} == {ids["real.jpg"], other["real.jpg"]}
    for bad in ("Outdated", "", "none"):
        with pytest.raises(InputFormatError, match="warning must be one of"):
            photos_page(store, org, warning=bad)


def test_protect_list_filters_on_the_warning(tmp_path: Path) -> None:
    db = str(tmp_path / "cg.db")
    from childguard.store import open_store

    store = open_store(f"sqlite:///{db}")
    try:
        ids = _registered(store, tmp_path)
    finally:
        store.close()
    runner = CliRunner()
    result = runner.invoke(app, ["protect", "list", "--warning", "outdated", "--json", "--db", db])
    assert result.exit_code == EXIT_OK, result.output
    listed = json.loads(result.output)
    assert [(p["id"], p["warning"]["code"]) for p in listed] == [(ids["real.jpg"], OUTDATED)]
    table = runner.invoke(
        app, ["protect", "list", "--warning", "any", "--db", db], env={"COLUMNS": "200"}
    )
    assert table.exit_code == EXIT_OK
    rows = {line.split("│")[3].strip(): line for line in table.output.splitlines() if "│" in line}
    assert {name: line.split("│")[-2].strip() for name, line in rows.items()} == {
        "real.jpg": OUTDATED,
        "gradient.jpg": PLAIN,
        "blobs.jpg": FEW,
    }
    bad = runner.invoke(app, ["protect", "list", "--warning", "bent", "--db", db])
    assert bad.exit_code == EXIT_USAGE and "warning must be one of" in bad.output


def test_the_migration_gives_the_photos_stored_before_their_warnings(
    store: Store, tmp_path: Path
) -> None:
    ids = _registered(store, tmp_path)
    config = alembic_config()
    with migration_connection(store.engine) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0016_bank_signatures")
    columns = {c["name"] for c in inspect(store.engine).get_columns("protected_photo")}
    assert "warning" not in columns
    with migration_connection(store.engine) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with store.session() as s:
        codes = {name: s.get(ProtectedPhoto, i).warning for name, i in ids.items()}  # type: ignore[union-attr]
    assert codes == {"real.jpg": OUTDATED, "gradient.jpg": PLAIN, "blobs.jpg": FEW}
