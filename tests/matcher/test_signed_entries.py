"""The hotline's own known-abuse entries carry the signature of the media it assessed, so the
matcher verifies crops of them as it verifies protected photos; an outside list holding the same
hash stays hash-only. Real store (SQLite and PostgreSQL), real photos, real evidence sealing."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from argon2 import Parameters, Type
from PIL import Image
from sqlalchemy import select

from childguard.accounts import create_user
from childguard.accounts.passwords import use_parameters
from childguard.banks import EntryRecord, add_entries, create_bank
from childguard.hotline.assessments import HOTLINE_BANK, record_vote
from childguard.hotline.evidence import keep_evidence, purge_expired
from childguard.hotline.items import Place, record_content
from childguard.hotline.processing import ProcessingSettings, process_due
from childguard.hotline.signatures import sign_banked, sign_item
from childguard.matcher import Matcher
from childguard.matcher.protected import VERIFIED_PREFIX
from childguard.pipeline import hash_bytes
from childguard.store.bank_signature_models import BankSignature
from childguard.store.base import utcnow
from childguard.store.db import Store
from childguard.store.hotline_models import Item

BASELINE = {"age_band": "prepubescent", "severity": "A"}
NOT_ILLEGAL = {"age_band": "adult", "severity": "none"}
OUTSIDE = "OUTSIDE_LIST"
KEY = bytes(range(32))
# Benign photos with texture enough for ORB, standing in for assessed media.
ASSESSED, OTHER, UNRELATED = "Bridge", "TwoWings", "Dragonfly"


@pytest.fixture(autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    use_parameters(Parameters(Type.ID, 19, 16, 32, 1, 1024, 1))
    yield
    use_parameters(None)


def _jpeg(im: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def crop15(im: Image.Image) -> Image.Image:
    """15% of the area cut off, anchored at the top left (the aspect ratio kept)."""
    w, h = im.size
    keep = 0.85**0.5
    return im.crop((0, 0, round(w * keep), round(h * keep)))


@pytest.fixture(scope="module")
def photos(real_photos: list[Path]) -> dict[str, Image.Image]:
    by_stem = {p.stem.split("_by_")[0]: p for p in real_photos}
    out: dict[str, Image.Image] = {}
    for stem in (ASSESSED, OTHER, UNRELATED):
        raw = Image.open(by_stem[stem])
        raw.draft("RGB", (1024, 1024))  # a reduced JPEG decode: the photos are up to 16 MP
        im = raw.convert("RGB")
        im.thumbnail((512, 512))
        out[stem] = im
    return out


def _analysts(store: Store) -> list[int]:
    return [
        create_user(
            store,
            f"analyst-{secrets.token_hex(4)}",
            "a long test password",
            actor="t",
            roles=["analyst"],
        ).id
        for _ in range(2)
    ]


def _item(store: Store, data: bytes, name: str, evidence: Path) -> int:
    url = f"http://site.test/{name}.jpg"
    outcome = record_content(
        store, hash_bytes(data, path=url), [], Place(url=url, page_url="http://site.test/")
    )
    keep_evidence(store, KEY, evidence, outcome.item_id, data)
    return outcome.item_id


def _assess(store: Store, item_id: int, facts: dict[str, str]) -> None:
    for analyst in _analysts(store):
        result = record_vote(store, item_id, analyst, facts)
    assert result.status == "final"


def _query(matcher: Matcher, im: Image.Image) -> dict[str, list[str]]:
    """Bank name -> variants of the query's matches (hashed as the crawl hashes it)."""
    record = hash_bytes(_jpeg(im, 80), robust=True, features=matcher.needs_features)
    out: dict[str, list[str]] = {}
    for m in matcher.match(record).matches:
        out.setdefault(m.bank_name, []).append(m.variant)
    return out


def test_a_crop_of_an_assessed_item_matches_the_hotline_bank_but_not_a_hash_only_list(
    store: Store, photos: dict[str, Image.Image], tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence"
    data = _jpeg(photos[ASSESSED])
    item_id = _item(store, data, ASSESSED, evidence)
    _assess(store, item_id, BASELINE)
    # The same media in an outside list: its hashes only.
    record = hash_bytes(data)
    create_bank(store, OUTSIDE, "known-abuse", actor="t")
    add_entries(
        store,
        OUTSIDE,
        [EntryRecord(t, v.value, source="outside") for t, v in record.signals.items()],
        actor="t",
    )
    cleared = _item(store, _jpeg(photos[OTHER]), OTHER, evidence)
    _assess(store, cleared, NOT_ILLEGAL)

    matcher = Matcher(store, persist=False)
    assert not matcher.needs_features  # nothing signed yet: queries need no features
    before = _query(matcher, crop15(photos[ASSESSED]))
    assert HOTLINE_BANK not in before and OUTSIDE not in before  # hash-only: the crop is missed

    report = sign_banked(store, KEY)
    assert report.signed == [item_id]  # the not-illegal item is not banked, so not signed
    assert sign_item(store, KEY, item_id, actor="t") is False  # once per entry
    with store.session() as s:
        rows = s.scalars(select(BankSignature)).all()
        assert [r.subject for r in rows] == [f"item:{item_id}"]
        assert len(rows[0].signature["pdq"]) == 8 and rows[0].signature["features"]

    matcher.refresh()
    assert matcher.needs_features
    whole = _query(matcher, photos[ASSESSED])
    assert set(whole) == {HOTLINE_BANK, OUTSIDE}  # the outside list does hold the photo
    cropped = _query(matcher, crop15(photos[ASSESSED]))
    assert set(cropped) == {HOTLINE_BANK}
    assert all(v.startswith(VERIFIED_PREFIX) for v in cropped[HOTLINE_BANK])
    for stem in (OTHER, UNRELATED):
        assert _query(matcher, crop15(photos[stem])) == {}


def test_the_periodic_task_signs_while_evidence_is_held_and_never_after(
    store: Store, photos: dict[str, Image.Image], tmp_path: Path
) -> None:
    evidence = tmp_path / "evidence"
    held = _item(store, _jpeg(photos[ASSESSED]), ASSESSED, evidence)
    purged = _item(store, _jpeg(photos[UNRELATED]), UNRELATED, evidence)
    for item_id in (held, purged):
        _assess(store, item_id, BASELINE)
    with store.session() as s:
        item = s.get(Item, purged)
        assert item is not None
        item.evidence_expires_at = utcnow() - timedelta(days=1)
    assert purge_expired(store).purged == [purged]
    assert sign_item(store, KEY, purged, actor="t") is False
    done = process_due(store, ProcessingSettings(evidence_dir=evidence, evidence_key=KEY))
    assert done["signed"]["items"] == [held]
    again = process_due(store, ProcessingSettings(evidence_dir=evidence, evidence_key=KEY))
    assert again["signed"]["signed"] == 0


def test_a_signature_made_from_bent_pixels_is_signed_anew_once(
    store: Store, real_photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An item signed from the hashing fast path's pixels (each side reduced apart: a large
    photo's frame comes out near square) is signed anew from its evidence by the periodic
    task, with the item's aspect ratio; audited; once."""
    import childguard.hotline.signatures as signatures
    from childguard.media import Content
    from childguard.robust.signature import frame_fits, stored_frame
    from childguard.store.models import AuditEvent

    monkeypatch.setattr(signatures, "_SWEPT", set())
    by_stem = {p.stem.split("_by_")[0]: p for p in real_photos}
    raw = Image.open(by_stem[ASSESSED])
    raw.draft("RGB", (2048, 2048))
    large = raw.convert("RGB")
    large.thumbnail((1600, 1600))
    evidence = tmp_path / "evidence"
    item_id = _item(store, _jpeg(large), ASSESSED, evidence)
    _assess(store, item_id, BASELINE)
    with monkeypatch.context() as old:  # the decoding before signatures came from the picture
        old.setattr(Content, "picture", lambda self: self.image().pixels)
        assert sign_item(store, KEY, item_id, actor="t")

    def frame() -> tuple[bool, tuple[int, int] | None]:
        with store.session() as s:
            row = s.scalars(select(BankSignature)).one()
            item = s.get(Item, item_id)
            assert item is not None and item.width and item.height
            got = stored_frame(row.signature)
            return frame_fits(got, item.width, item.height), got

    assert frame()[0] is False
    settings = ProcessingSettings(evidence_dir=evidence, evidence_key=KEY)
    done = process_due(store, settings)
    assert done["signed"]["resigned"] == [item_id] and done["signed"]["signed"] == 0
    fits, size = frame()
    assert fits and size is not None and max(size) == 512
    with store.session() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.object_type == "bank_entry"))
        assert sorted(a for a in actions if a.startswith("hotline.")) == [
            "hotline.resign",
            "hotline.sign",
        ]
    assert signatures._SWEPT  # every bent one tried: later runs do not look again
    assert process_due(store, settings)["signed"]["resigned"] == []
    matcher = Matcher(store, persist=False)
    cropped = _query(matcher, crop15(large))
    assert HOTLINE_BANK in cropped


def test_a_signature_stored_without_the_square_views_is_signed_anew_once(
    store: Store, photos: dict[str, Image.Image], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signature made before the square views (its frame fits) is out of date: the periodic
    task signs it anew from the evidence, squares included; once."""
    import childguard.hotline.signatures as signatures
    from childguard.robust.signature import SQUARE_VIEWS, stored_has_squares

    monkeypatch.setattr(signatures, "_SWEPT", set())
    evidence = tmp_path / "evidence"
    item_id = _item(store, _jpeg(photos[ASSESSED]), ASSESSED, evidence)
    _assess(store, item_id, BASELINE)
    assert sign_item(store, KEY, item_id, actor="t")
    with store.session() as s:
        row = s.scalars(select(BankSignature)).one()
        assert stored_has_squares(row.signature)
        row.signature = {k: v for k, v in row.signature.items() if k != "squares"}
    settings = ProcessingSettings(evidence_dir=evidence, evidence_key=KEY)
    done = process_due(store, settings)
    assert done["signed"]["resigned"] == [item_id]
    with store.session() as s:
        squares = s.scalars(select(BankSignature)).one().signature["squares"]
        assert [label for label, _ in squares] == list(SQUARE_VIEWS)
    assert process_due(store, settings)["signed"]["resigned"] == []
