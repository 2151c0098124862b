"""Registering protected photos: signatures and metadata in the store, never image bytes."""

from __future__ import annotations

import base64
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from protect_helpers import WINDOW, find_leak, scan_database, synthetic_photo, windows
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from childguard.pipeline import hash_file
from childguard.protect.organisations import (
    OrganisationError,
    create_organisation,
    get_organisation,
)
from childguard.protect.register import (
    get_photo,
    list_photos,
    photo_signals,
    photos_for_entry,
    register_photos,
    remove_photo,
)
from childguard.signals.pdq import PdqSignal
from childguard.store import Store, audit
from childguard.store.models import AuditEvent, Bank, BankEntry
from childguard.store.protect_models import ProtectedPhoto

PHOTOS = Path(__file__).resolve().parents[2] / ".cache" / "photos"


@pytest.fixture
def album(tmp_path: Path) -> Path:
    d = tmp_path / "album"
    (d / "day2").mkdir(parents=True)
    for i in range(3):
        synthetic_photo(d / f"camp{i}.jpg", seed=i)
    synthetic_photo(d / "day2" / "lake.png", seed=10)
    (d / "notes.txt").write_text("not a photo")
    whole = (d / "camp0.jpg").read_bytes()
    (d / "broken.jpg").write_bytes(whole[: len(whole) // 2])  # truncated JPEG
    real = sorted(PHOTOS.glob("mate-backgrounds/*.jpg"))[:1]
    for p in real:
        shutil.copy(p, d / p.name)
    return d


def test_register_stores_signatures_and_links_entries(store: Store, album: Path) -> None:
    published = datetime(2024, 5, 1, tzinfo=UTC)
    with store.session() as s:
        org = create_organisation(s, "Scouts Example", emails=["leader@scouts.example"])
        report = register_photos(
            s,
            album,
            org,
            titles={"camp0.jpg": "Campfire"},
            published_url="https://x.example/a",
            published_at=published,
        )
    assert len(report.registered) == 4 + len(list(PHOTOS.glob("mate-backgrounds/*.jpg"))[:1])
    assert [Path(p).name for p, _ in report.failed] == ["broken.jpg"]
    assert report.failed[0][1].startswith("truncated")
    with store.session() as s:
        org = get_organisation(s, "Scouts Example")
        photos = list_photos(s, org)
        camp0 = next(p for p in photos if p.file_name == "camp0.jpg")
        assert camp0.title == "Campfire" and camp0.published_at == published
        expected_pdq = hash_file(album / "camp0.jpg").value("pdq")
        assert PdqSignal.distance(camp0.pdq, expected_pdq) == 0
        roles = {role: e for role, e in photo_signals(s, camp0)}
        assert {"pdq", "md5", "sha1", "sha256"} <= set(roles)
        assert any(r.startswith("region:") for r in roles)  # robust signature views
        assert roles["sha256"].value == camp0.sha256
        assert all(e.bank_id == org.bank_id for e in roles.values())
        assert [p.id for p in photos_for_entry(s, roles["pdq"].id)] == [camp0.id]
        bank = s.get(Bank, org.bank_id)
        assert bank is not None and bank.kind == "protected"
        audits = s.scalar(select(func.count()).where(AuditEvent.action == "protect.register"))
        assert audits == len(photos)


def test_register_twice_is_idempotent(store: Store, album: Path) -> None:
    with store.session() as s:
        org = create_organisation(s, "Club")
        first = register_photos(s, album, org)
    with store.session() as s:
        org = get_organisation(s, "Club")
        again = register_photos(s, album, org)
        assert again.registered == [] and len(again.already) == len(first.registered)
        assert s.scalar(select(func.count()).select_from(ProtectedPhoto)) == len(first.registered)


def test_no_image_bytes_anywhere_in_the_store(store: Store, album: Path) -> None:
    with store.session() as s:
        org = create_organisation(s, "No Bytes", emails=["a@b.example"])
        report = register_photos(s, album, org, titles={"camp1.jpg": "Lake"})
    assert report.registered
    images = [
        p for p in album.rglob("*") if p.suffix in (".jpg", ".png") and p.name != "broken.jpg"
    ]
    needles: set[bytes] = set()
    hex_needles: set[bytes] = set()
    for p in images:
        data = p.read_bytes()
        needles |= windows(data)
        if len(data) < 400_000:
            hex_needles |= windows(data.hex().encode())
            for offset in range(3):  # base64 of any alignment
                needles |= windows(base64.b64encode(data[offset:]))
    leaks = scan_database(store.engine, needles, hex_needles)
    assert leaks == []
    if store.dialect == "sqlite":
        db_path = Path(make_url(store.url).database or "")
        store.engine.dispose()
        for f in [db_path, db_path.with_name(db_path.name + "-wal")]:
            if f.exists():
                assert find_leak(f.read_bytes(), needles) is None, f"image bytes inside {f.name}"
    # The scanner itself finds image bytes when they are there (raw, hex or base64).
    small = next(p for p in images if p.stat().st_size < 400_000).read_bytes()
    sample = small[1001 : 1001 + WINDOW * 3]
    assert find_leak(b"xx" + sample, needles) is not None
    for start in range(1001, 1001 + WINDOW):  # a 48-byte run at any offset is caught
        assert find_leak(b"x" + small[start : start + WINDOW] + b"x", needles) is not None
    with store.session() as s:
        for encoded in (sample.hex(), base64.b64encode(sample).decode()):
            audit.record(
                s, actor="t", action="leak", object_type="x", object_id=1, details={"blob": encoded}
            )
    assert scan_database(store.engine, needles, hex_needles) == ["audit_event.details"] * 2


def test_remove_deletes_the_photo_and_its_unshared_entries(store: Store, tmp_path: Path) -> None:
    d = tmp_path / "a"
    d.mkdir()
    synthetic_photo(d / "one.png", seed=1)
    synthetic_photo(d / "two.png", seed=2)
    with store.session() as s:
        org = create_organisation(s, "Remover")
        register_photos(s, d, org)
    with store.session() as s:
        org = get_organisation(s, "Remover")
        one = next(p for p in list_photos(s, org) if p.file_name == "one.png")
        own = {e.id for _, e in photo_signals(s, one)}
        two = next(p for p in list_photos(s, org) if p.file_name == "two.png")
        kept = {e.id for _, e in photo_signals(s, two)}
        removed = remove_photo(s, get_photo(s, one.id, org))
        assert removed == len(own - kept) >= 4
    with store.session() as s:
        org = get_organisation(s, "Remover")
        assert [p.file_name for p in list_photos(s, org)] == ["two.png"]
        n = s.scalar(
            select(func.count()).select_from(BankEntry).where(BankEntry.bank_id == org.bank_id)
        )
        assert n == len(kept)


def test_organisation_validation(store: Store) -> None:
    with store.session() as s:
        with pytest.raises(OrganisationError, match="email"):
            create_organisation(s, "Bad", emails=["not-an-email"])
        with pytest.raises(OrganisationError, match="http"):
            create_organisation(s, "Bad", webhook_url="ftp://x/")
        org = create_organisation(s, "Hooked", webhook_url="https://hooks.example/cg")
        assert org.webhook_secret and len(org.webhook_secret) >= 32
        with pytest.raises(OrganisationError, match="already exists"):
            create_organisation(s, "Hooked")
        with pytest.raises(OrganisationError, match="no organisation"):
            get_organisation(s, "Nobody")


def test_a_signature_made_from_bent_pixels_is_replaced_when_the_photo_is_registered_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large photo signed from the fast path's pixels (each side reduced apart, so a 16:10
    photo's frame comes out near square) is re-signed on its picture when registered again:
    the frame then has the photo's aspect, the audit log says so, and a third registration
    changes nothing. The matcher warns about bent signatures while any are left."""
    import json

    import childguard.matcher.protected as protected_matcher
    from childguard.matcher import Matcher
    from childguard.media import Content
    from childguard.protect.register import (
        REGISTERED,
        compute_photo_signature,
        store_signature,
    )
    from childguard.robust.signature import compute_signature, frame_fits, stored_frame

    original = sorted(PHOTOS.glob("mate-backgrounds/*.jpg"))[0]
    album = tmp_path / "one"
    album.mkdir()
    shutil.copy(original, album / original.name)
    record = compute_photo_signature(album / original.name)
    bent = compute_signature(Content(original.read_bytes()).image().pixels)
    assert bent.size is not None and not frame_fits(bent.size, record.width, record.height)
    record.features = {"robust": json.loads(bent.to_json())}
    with store.session() as s:
        org = create_organisation(s, "Old Signatures")
        photo, outcome = store_signature(s, org, record)
        photo_id = photo.id
    logged: list[tuple[str, str, dict[str, object]]] = []

    class Recorder:  # the matcher's log calls, whatever level the run's logging is set to
        def __getattr__(self, level: str) -> object:
            return lambda event, **kw: logged.append((level, event, kw))

    monkeypatch.setattr(protected_matcher, "log", Recorder())
    matcher = Matcher(store, index_base=tmp_path / "idx")
    assert matcher.protected.bent_photos() == [photo_id]
    warned = [(lvl, kw) for lvl, event, kw in logged if "reduced apart" in event]
    assert warned == [("warning", {"photos": 1, "photo_ids": [photo_id]})]

    with store.session() as s:
        org = get_organisation(s, "Old Signatures")
        again = register_photos(s, album, org)
        assert [p.id for p in again.resigned] == [photo_id] and not again.registered
        stored = s.get(ProtectedPhoto, photo_id)
        assert stored is not None
        frame = stored_frame((stored.signatures or {})["robust"])
        assert frame_fits(frame, stored.width, stored.height)
        actions = s.scalars(
            select(AuditEvent.action).where(
                AuditEvent.object_type == "protected_photo", AuditEvent.object_id == str(photo_id)
            )
        )
        assert sorted(actions) == ["protect.register", "protect.resign"]
    with store.session() as s:
        third = register_photos(s, album, get_organisation(s, "Old Signatures"))
        assert [p.id for p in third.already] == [photo_id] and not third.resigned
    logged.clear()
    matcher.refresh()
    assert matcher.protected.bent_photos() == []
    assert not any("reduced apart" in event for _, event, _ in logged)
    assert matcher.match(hash_file(original, features=True)).matched
    assert outcome == REGISTERED


def test_a_signature_without_the_square_views_is_replaced_when_the_photo_is_registered_again(
    store: Store, tmp_path: Path
) -> None:
    """A photo signed before the square views were registered gets them when registered again
    (RESIGNED, audited); a client that sends a signature without them never replaces one that
    has them."""
    from childguard.matcher import Matcher
    from childguard.protect.register import ALREADY, compute_photo_signature, store_signature
    from childguard.robust.signature import SQUARE_VIEWS, stored_has_squares

    original = sorted(PHOTOS.glob("mate-backgrounds/*.jpg"))[1]
    album = tmp_path / "squares"
    album.mkdir()
    shutil.copy(original, album / original.name)
    record = compute_photo_signature(album / original.name)
    current = dict(record.features or {})
    record.features = {"robust": {k: v for k, v in current["robust"].items() if k != "squares"}}
    with store.session() as s:
        org = create_organisation(s, "Before Squares")
        photo_id = store_signature(s, org, record)[0].id
    matcher = Matcher(store, index_base=tmp_path / "idx")
    assert matcher.protected.squareless_photos() == [photo_id]
    assert matcher.protected.bent_photos() == []
    with store.session() as s:
        again = register_photos(s, album, get_organisation(s, "Before Squares"))
        assert [p.id for p in again.resigned] == [photo_id] and not again.registered
        stored = s.get(ProtectedPhoto, photo_id)
        assert stored is not None and stored_has_squares((stored.signatures or {})["robust"])
        labels = [label for label, _ in stored.signatures["robust"]["squares"]]
        assert labels == list(SQUARE_VIEWS)
        assert "protect.resign" in set(
            s.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(photo_id)))
        )
        # The older client's signature again: the current one stays.
        assert store_signature(s, get_organisation(s, "Before Squares"), record)[1] == ALREADY
        stored = s.get(ProtectedPhoto, photo_id)
        assert stored is not None and stored_has_squares((stored.signatures or {})["robust"])
    matcher.refresh()
    assert matcher.protected.squareless_photos() == []
