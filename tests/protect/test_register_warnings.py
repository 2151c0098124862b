"""A registered photo whose signature gives the matcher little to go on is reported, with the
reason, by the library, `protect register` and `protect show`; a photo the matcher can find is
not, and a photo registered again is not reported twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from childguard.cli import EXIT_OK, app
from childguard.protect.organisations import create_organisation
from childguard.protect.register import (
    FEW,
    FEW_KEYPOINTS,
    PLAIN,
    compute_photo_signature,
    register_photos,
)
from childguard.robust.signature import ProtectedSignature
from childguard.store import Store
from sample_media import plain_photo, two_blobs_photo

PHOTOS = Path(__file__).resolve().parents[2] / ".cache" / "photos"


def _album(tmp_path: Path) -> Path:
    album = tmp_path / "album"
    album.mkdir()
    plain_photo(album / "gradient.jpg")
    two_blobs_photo(album / "blobs.jpg")
    real = sorted(PHOTOS.glob("mate-backgrounds/*.jpg"))[0]
    shutil.copy(real, album / "real.jpg")
    return album


def test_the_album_photos_are_what_their_names_say(tmp_path: Path) -> None:
    album = _album(tmp_path)
    for name, few, weak in (
        ("gradient", True, True),
        ("blobs", True, False),
        ("real", False, False),
    ):
        record = compute_photo_signature(album / f"{name}.jpg")
        sig = ProtectedSignature.from_json(json.dumps((record.features or {})["robust"]))
        assert (len(sig.descriptors) < FEW_KEYPOINTS) is few, name
        assert ((record.quality("pdq") or 0) < 50) is weak, name


def test_register_warns_of_photos_hard_to_find_once(store: Store, tmp_path: Path) -> None:
    album = _album(tmp_path)
    with store.session() as s:
        org = create_organisation(s, "Plain Pictures")
        report = register_photos(s, album, org)
        assert len(report.registered) == 3
        warned = {p.file_name: w for p, w in report.warnings}
        assert set(warned) == {"gradient.jpg", "blobs.jpg"}
        assert (
            warned["gradient.jpg"].code == PLAIN
            and "re-saved copy" in warned["gradient.jpg"].reason
        )
        assert warned["blobs.jpg"].code == FEW and "crops" in warned["blobs.jpg"].reason
        again = register_photos(s, album, org)
        assert len(again.already) == 3 and again.warnings == []


def test_the_command_line_prints_and_shows_the_warning(tmp_path: Path) -> None:
    album = _album(tmp_path)
    db = str(tmp_path / "cg.db")
    runner = CliRunner()
    assert runner.invoke(app, ["org", "add", "Plain", "--db", db]).exit_code == EXIT_OK
    result = runner.invoke(app, ["protect", "register", str(album), "--org", "Plain", "--db", db])
    assert result.exit_code == EXIT_OK, result.output
    hard = [line for line in result.output.splitlines() if "hard to find" in line]
    assert len(hard) == 2 and any("gradient.jpg: too plain" in line for line in hard)
    listed = json.loads(runner.invoke(app, ["protect", "list", "--json", "--db", db]).output)
    by_name = {p["file_name"]: p for p in listed}
    assert by_name["real.jpg"]["warning"] is None
    assert by_name["blobs.jpg"]["warning"]["code"] == FEW
    assert "few keypoints" in by_name["blobs.jpg"]["warning"]["reason"]
    shown = runner.invoke(app, ["protect", "show", str(by_name["gradient.jpg"]["id"]), "--db", db])
    assert "too plain" in json.loads(shown.output)["warning"]["reason"]
