"""A report is assessed, routed and bundled; the bundle is read back and every hash checked,
on SQLite and PostgreSQL. Tampering, unlisted files and media without a recipient key fail."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest
from argon2 import Parameters, Type
from sqlalchemy import func, select
from typer.testing import CliRunner

from childguard import cli
from childguard.accounts.passwords import use_parameters
from childguard.banks.formats.base import ReadOptions
from childguard.banks.formats.vics import VicsFormat
from childguard.banks.records import EntryRecord
from childguard.hotline import bundles, vics
from childguard.hotline.bundles import (
    BundleContent,
    MediaNeedsRecipient,
    gather,
    verify_bundle,
    write_bundle,
)
from childguard.hotline.referrals import build_referral
from childguard.store import open_store
from childguard.store.db import Store
from childguard.store.referral_models import Referral
from hotline.hotline_site import jpeg_bytes, serving
from hotline.referral_fixtures import (
    BASELINE,
    INFANT_C,
    cheap_password_hashes,
    police,
    propose_and_confirm,
    report_and_assess,
    sqlite_store,
)

__all__ = ["cheap_password_hashes", "sqlite_store"]
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_report_is_assessed_routed_and_bundled(store: Store, tmp_path: Path) -> None:
    identity = pyrage.x25519.Identity.generate()
    with serving() as site:
        reported = report_and_assess(
            store, site, tmp_path / "evidence", [41, 42], [BASELINE, INFANT_C]
        )
    destination = police(store, public_key=str(identity.to_public()))
    route_ids = propose_and_confirm(store, reported.item_ids, actor="user:7", now=NOW)
    info = build_referral(
        store,
        route_ids,
        destination_id=destination,
        actor="user:7",
        bundles_dir=tmp_path / "bundles",
        evidence_key=reported.settings.evidence_key,
        with_media=True,
        notifier_name="Test Hotline",
        now=NOW,
    )
    assert info.reference == f"CG-R-2026-{info.id:06d}" and info.state == "built"
    path = Path(info.bundle_path)
    assert path.parent == (tmp_path / "bundles").resolve()
    raw = path.read_bytes()
    assert _sha256(raw) == info.bundle_sha256 and len(raw) == info.byte_size

    # Read it back by hand: every file's hash against the manifest, the manifest's recorded.
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        manifest_raw = archive.read("manifest.json")
        assert _sha256(manifest_raw) == info.manifest_sha256
        manifest = json.loads(manifest_raw)
        listed = {f["name"]: f for f in manifest["files"]}
        assert names == {"manifest.json", *listed}
        for name, entry in listed.items():
            data = archive.read(name)
            assert (_sha256(data), len(data)) == (entry["sha256"], entry["bytes"]), name
        contents = {name: archive.read(name) for name in listed}
    check = verify_bundle(
        path, manifest_sha256=info.manifest_sha256, bundle_sha256=info.bundle_sha256
    )
    assert check.ok, check.problems
    assert len(check.files) == len(listed) == 4  # vics, csv, two encrypted media files

    assert manifest["reference"] == info.reference and manifest["from"] == "Test Hotline"
    assert manifest["destination"]["id"] == destination and manifest["with_media"] is True
    items = {i["item_id"]: i for i in manifest["items"]}
    assert list(items) == reported.item_ids
    first = items[reported.item_ids[0]]
    assert first["sha256"] == _sha256(jpeg_bytes(41))
    assert first["signals"]["md5"] == hashlib.md5(jpeg_bytes(41)).hexdigest()
    (place,) = first["places"]
    assert place["url"] == reported.urls[0] and place["page_url"].endswith("/gallery-41.html")
    assert place["first_seen"] and place["fetched_at"] and place["trace"]["addresses"]
    kinds = [a["kind"] for a in first["assessments"]]
    assert kinds == ["vote", "vote", "final"]
    voters = {f"user:{a}" for a in reported.analysts}
    assert {a["analyst"] for a in first["assessments"] if a["kind"] == "vote"} == voters
    final_labels = {
        (lb["scheme"], lb["profile"], lb["label"]) for lb in first["assessments"][-1]["labels"]
    }
    assert ("uk", "default", "A") in final_labels and ("vics", "UK", "1") in final_labels
    assert [r["id"] for r in first["routes"]] == [route_ids[0]]
    events = [e["event"] for e in first["custody"]]
    for step in ("received", "fetched", "assessed", "routed", "confirmed", "bundled"):
        assert step in events, step
    confirmed = next(e for e in first["custody"] if e["event"] == "confirmed")
    assert confirmed["actor"] == "user:7"
    received = next(e for e in first["custody"] if e["event"] == "received")
    assert received["actor"] == "reporter (api)"  # never the key that filed it
    assert "key:99" not in manifest_raw.decode()

    doc = json.loads(contents["vics.json"])
    assert doc["@odata.context"].endswith("/2.0.xml/UK/$metadata#Media")
    categories = {m["MediaID"]: m.get("Category") for m in doc["value"]}
    assert categories == {reported.item_ids[0]: 1, reported.item_ids[1]: 3}  # UK A -> 1, C -> 3
    assert doc["value"][0]["MD5"] == first["signals"]["md5"].upper()

    rows = list(csv.DictReader(io.StringIO(contents["items.csv"].decode())))
    assert [r["item_id"] for r in rows] == [str(i) for i in reported.item_ids]
    assert rows[1]["industry"] == "A2" and rows[0]["url"] == reported.urls[0]

    for seed, item_id in zip([41, 42], reported.item_ids, strict=True):
        sealed = contents[f"evidence/{_sha256(jpeg_bytes(seed))}.age"]
        assert jpeg_bytes(seed) not in sealed
        assert pyrage.decrypt(sealed, [identity]) == jpeg_bytes(seed), item_id


def _content(store: Store, item_ids: list[int]) -> BundleContent:
    return BundleContent(
        reference="CG-R-2026-000099",
        destination={"id": 1, "name": "Police"},
        built_by="user:1",
        built_at=NOW,
        items=gather(store, item_ids),
        vics_profile="us",
    )


@pytest.fixture(scope="module")
def assessed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[int]]]:
    """One assessed item on SQLite for the tests of the zip itself."""
    base = tmp_path_factory.mktemp("assessed")
    store = open_store(f"sqlite:///{base / 'store.db'}")
    use_parameters(Parameters(Type.ID, 19, 16, 32, 1, 1024, 1))
    try:
        with serving() as site:
            reported = report_and_assess(store, site, base / "evidence", [43], [BASELINE])
        yield store, reported.item_ids
    finally:
        use_parameters(None)
        store.close()


def test_a_changed_file_an_extra_file_or_another_manifest_fail_verification(
    assessed: tuple[Store, list[int]], tmp_path: Path
) -> None:
    store, item_ids = assessed
    built = write_bundle(tmp_path / "b.zip", _content(store, item_ids))
    assert verify_bundle(built.path, manifest_sha256=built.manifest_sha256).ok
    assert built.files == [
        {"name": n, "sha256": _sha256(d), "bytes": len(d)}
        for n, d in _members(built.path)
        if n != "manifest.json"
    ]

    def rewrite(target: Path, change: dict[str, bytes], extra: dict[str, bytes]) -> Path:
        with zipfile.ZipFile(built.path) as src, zipfile.ZipFile(target, "w") as out:
            for name in src.namelist():
                out.writestr(name, change.get(name, src.read(name)))
            for name, data in extra.items():
                out.writestr(name, data)
        return target

    changed = rewrite(tmp_path / "changed.zip", {"items.csv": b"reference\r\n"}, {})
    check = verify_bundle(changed)
    assert not check.ok and any("items.csv" in p for p in check.problems)
    extra = rewrite(tmp_path / "extra.zip", {}, {"evidence/plain.jpg": jpeg_bytes(43)})
    check = verify_bundle(extra)
    assert not check.ok and any("not in the manifest" in p for p in check.problems)
    assert not verify_bundle(built.path, manifest_sha256="0" * 64).ok
    assert not verify_bundle(built.path, bundle_sha256="0" * 64).ok
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    assert not verify_bundle(tmp_path / "broken.zip").ok


def _members(path: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        return [(n, archive.read(n)) for n in archive.namelist()]


def test_the_same_content_makes_the_same_zip(
    assessed: tuple[Store, list[int]], tmp_path: Path
) -> None:
    store, item_ids = assessed
    content = _content(store, item_ids)
    one = write_bundle(tmp_path / "one.zip", content)
    two = write_bundle(tmp_path / "two.zip", content)
    assert one.sha256 == two.sha256 and one.manifest_sha256 == two.manifest_sha256
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_media_is_never_bundled_without_a_recipient_key(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    with serving() as site:
        item_ids = report_and_assess(store, site, tmp_path / "evidence", [44], [BASELINE]).item_ids
    with pytest.raises(MediaNeedsRecipient):
        write_bundle(tmp_path / "plain.zip", _content(store, item_ids), media={"x": jpeg_bytes(43)})
    assert not (tmp_path / "plain.zip").exists()
    destination = police(store)  # no public key
    route_ids = propose_and_confirm(store, item_ids, actor="user:7", now=NOW)
    with pytest.raises(MediaNeedsRecipient, match="public key"):
        build_referral(
            store,
            route_ids,
            destination_id=destination,
            actor="user:7",
            bundles_dir=tmp_path / "bundles",
            evidence_key=b"k" * 32,
            with_media=True,
            notifier_name="Test Hotline",
        )
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Referral)) == 0
    assert not (tmp_path / "bundles").exists()


def test_the_vics_document_reads_back_through_the_vics_importer(
    assessed: tuple[Store, list[int]],
) -> None:
    store, item_ids = assessed
    (item,) = gather(store, item_ids)
    doc = vics.document([item.vics_media()], "us")
    assert vics.check_document(doc) == []
    records = list(VicsFormat().read(io.StringIO(json.dumps(doc)), ReadOptions()))
    assert all(isinstance(r, EntryRecord) for r in records)
    assert {(r.signal_type, r.value) for r in records if isinstance(r, EntryRecord)} == {
        ("md5", item.md5),
        ("sha1", item.sha1),
    }
    assert {r.classification_scheme for r in records if isinstance(r, EntryRecord)} == {"vics-US"}
    assert {r.classification_label for r in records if isinstance(r, EntryRecord)} == {"1"}
    with pytest.raises(vics.InvalidVicsProfile):
        vics.document([item.vics_media()], "de")
    assert vics.check_document({"@odata.context": "x", "value": [{}]}) != []


def test_a_cell_a_spreadsheet_would_run_is_quoted(assessed: tuple[Store, list[int]]) -> None:
    store, item_ids = assessed
    (item,) = gather(store, item_ids)
    tricky = {**item.places[0], "page_url": '=HYPERLINK("x")'}
    content = BundleContent(
        reference="=1+1",
        destination={},
        built_by="user:1",
        built_at=NOW,
        items=[bundles.BundleItem(**{**item.__dict__, "places": [tricky]})],
    )
    rows = list(csv.reader(io.StringIO(bundles.items_csv(content).decode())))
    assert rows[1][0] == "'=1+1" and rows[1][11] == '\'=HYPERLINK("x")'


def test_the_command_line_checks_a_bundle_without_a_store(
    assessed: tuple[Store, list[int]], tmp_path: Path
) -> None:
    store, item_ids = assessed
    built = write_bundle(tmp_path / "b.zip", _content(store, item_ids))
    runner = CliRunner()
    good = runner.invoke(
        cli.app, ["bundle", "verify", str(built.path), "--manifest-sha256", built.manifest_sha256]
    )
    assert good.exit_code == 0, good.output
    assert f"manifest {built.manifest_sha256}" in good.output and "vics.json" in good.output
    wrong = runner.invoke(cli.app, ["bundle", "verify", str(built.path), "--manifest-sha256", "0"])
    assert wrong.exit_code == 1 and "not the one recorded" in wrong.output
    missing = runner.invoke(cli.app, ["bundle", "verify", str(tmp_path / "none.zip")])
    assert missing.exit_code == 2
    as_json = runner.invoke(cli.app, ["bundle", "verify", str(built.path), "--json"])
    assert json.loads(as_json.stdout)["ok"] is True
