"""Registering photos by signatures computed on the device (`register_signatures` and
`POST /v1/organisation/photos/signatures`), on SQLite and PostgreSQL: the same rows and bank
entries as `protect register`, strict validation with nothing written on a bad batch,
idempotency, and each organisation only ever registering into and seeing its own photos."""

from __future__ import annotations

import contextlib
import copy
import secrets
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from childguard.accounts import create_user
from childguard.protect.organisations import create_organisation, get_organisation
from childguard.protect.register import (
    MAX_SIGNATURES,
    SignatureInvalid,
    check_signatures,
    compute_photo_signature,
    list_photos,
    photo_signals,
    register_photos,
    register_signatures,
)
from childguard.signals.content import ContentSignals
from childguard.store import Store
from childguard.store.models import BankEntry
from sample_media import plain_photo
from service.conftest import LiveServer, live_server


def _photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    tiles = rng.integers(0, 255, size=(12, 16, 3), dtype=np.uint8)
    picture = np.kron(tiles, np.ones((40, 40, 1), dtype=np.uint8))
    yy, xx = np.mgrid[0 : picture.shape[0], 0 : picture.shape[1]]
    picture[..., 1] = ((picture[..., 1].astype(np.int32) + xx // 3 + yy // 5) % 256).astype(
        np.uint8
    )
    Image.fromarray(picture).save(path, quality=90)
    return path


def payload(record: ContentSignals, **extra: Any) -> dict[str, Any]:
    """What the browser sends for a photo, built from the command line's own computation."""
    return {
        "file_name": record.path,
        "width": record.width,
        "height": record.height,
        "byte_size": record.size,
        "md5": record.value("md5"),
        "sha1": record.value("sha1"),
        "sha256": record.value("sha256"),
        "pdq": record.value("pdq"),
        "pdq_quality": record.quality("pdq"),
        "signature": copy.deepcopy(record.features["robust"]),
        **extra,
    }


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("sigphotos")
    return [_photo(base / f"photo-{i}.jpg", i) for i in range(3)]


@pytest.fixture(scope="module")
def records(photos: list[Path]) -> list[ContentSignals]:
    return [compute_photo_signature(p) for p in photos]


def _entries(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(BankEntry)) or 0)


def test_signatures_register_exactly_what_protect_register_writes(
    store: Store, photos: list[Path], records: list[ContentSignals]
) -> None:
    with store.session() as s:
        by_cli = create_organisation(s, "Scouts CLI")
        by_device = create_organisation(s, "Scouts Device")
        register_photos(s, photos[0], by_cli, titles={"photo-0.jpg": "Camp"})
        items = check_signatures([payload(records[0], title="Camp")])
        report = register_signatures(s, by_device, items, actor="test")
        assert len(report.registered) == 1 and not report.already
        cli_photo, device_photo = list_photos(s, by_cli)[0], list_photos(s, by_device)[0]
        for column in (
            "file_name", "title", "width", "height", "byte_size", "md5", "sha1", "sha256", "pdq",
            "pdq_quality", "signatures",
        ):  # fmt: skip
            assert getattr(device_photo, column) == getattr(cli_photo, column), column

        def roles(photo: Any) -> set[tuple[str, str, str]]:
            return {(r, e.signal_type, e.value) for r, e in photo_signals(s, photo)}

        assert roles(device_photo) == roles(cli_photo)
        assert {"md5", "sha1", "sha256", "pdq"} <= {r for r, _, _ in roles(device_photo)}
        assert any(r.startswith("region:") for r, _, _ in roles(device_photo))
        # The squares travel in the stored signature for the aligned check; they are no entry.
        squares = device_photo.signatures["robust"]["squares"]
        assert [label for label, _ in squares] == ["sqa", "sqc", "sqb"]
        assert not any(r.startswith("region:sq") for r, _, _ in roles(device_photo))


def test_a_client_that_sends_no_squares_still_registers_its_photo(
    store: Store, records: list[ContentSignals]
) -> None:
    sent = payload(records[2])
    del sent["signature"]["squares"]
    with store.session() as s:
        org = create_organisation(s, "Club Without Squares")
        report = register_signatures(s, org, check_signatures([sent]), actor="test")
        assert len(report.registered) == 1
        stored = list_photos(s, org)[0].signatures["robust"]
        assert "squares" not in stored and len(stored["pdq"]) == 8


def test_the_same_signature_twice_adds_nothing(store: Store, records: list[ContentSignals]) -> None:
    with store.session() as s:
        org = create_organisation(s, "Scouts")
        first = register_signatures(s, org, check_signatures([payload(r) for r in records]))
    assert len(first.registered) == 3
    before = _entries(store)
    with store.session() as s:
        org = get_organisation(s, "Scouts")
        again = register_signatures(s, org, check_signatures([payload(records[1])]))
    assert not again.registered and [p.sha256 for p in again.already] == [
        records[1].value("sha256")
    ]
    assert _entries(store) == before
    with store.session() as s:
        assert len(list_photos(s)) == 3


def _broken(record: ContentSignals) -> list[tuple[str, dict[str, Any], str]]:
    good = payload(record)
    sig = good["signature"]
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("md5", {**good, "md5": "abc"}, "photos[1].md5: want 32"),
        ("upper sha256", {**good, "sha256": good["sha256"].upper()}, "photos[0].sha256"),
        ("pdq", {**good, "pdq": "z" * 64}, "photos[0].pdq"),
        ("path", {**good, "file_name": "../etc/passwd"}, "not a path"),
        ("no name", {**good, "file_name": ""}, "file_name: required"),
        ("control", {**good, "title": "a\x00b"}, "control characters"),
        ("quality", {**good, "pdq_quality": 101}, "pdq_quality: want 0 to 100"),
        ("bool", {**good, "width": True}, "width: want an integer"),
        ("size", {**good, "byte_size": 0}, "byte_size"),
        ("unknown", {**good, "organisation_id": 1}, "unknown field 'organisation_id'"),
        ("url", {**good, "published_url": "javascript:alert(1)"}, "http or https"),
        ("when", {**good, "published_at": "last summer"}, "ISO date"),
        ("views", {**good, "signature": {**sig, "pdq": sig["pdq"][:3]}}, "want 8"),
        (
            "label",
            {**good, "signature": {**sig, "pdq": [["whole", sig["pdq"][0][1]], *sig["pdq"][1:]]}},
            "pdq[0]: want ['full', hash]",
        ),
        ("b64", {**good, "signature": {**sig, "features": "%%%"}}, "not base64"),
        ("36", {**good, "signature": {**sig, "features": "AAAA"}}, "multiple of 36"),
        (
            "frame",
            {**good, "signature": {**sig, "features": "//8AAA" + "A" * 42}},
            "outside the frame",
        ),
        ("frame size", {**good, "signature": {**sig, "size": [4000, 10]}}, "size[0]"),
        ("extra", {**good, "signature": {**sig, "pixels": "AAAA"}}, "pdq, squares, features"),
        ("squares", {**good, "signature": {**sig, "squares": []}}, "squares: want 3 [label, hash]"),
        (
            "square label",
            {
                **good,
                "signature": {
                    **sig,
                    "squares": [["sqx", sig["squares"][0][1]], *sig["squares"][1:]],
                },
            },
            "squares[0]: want ['sqa', hash]",
        ),
        (
            "square hash",
            {**good, "signature": {**sig, "squares": [*sig["squares"][:2], ["sqb", "f" * 63]]}},
            "squares[2]: want 64 lowercase hex",
        ),
    ]
    return cases


def test_a_bad_signature_is_refused_with_its_field_and_nothing_is_written(
    store: Store, records: list[ContentSignals]
) -> None:
    for name, bad, message in _broken(records[0]):
        with pytest.raises(SignatureInvalid) as caught:
            check_signatures([payload(records[1]), bad] if name == "md5" else [bad])
        assert message in str(caught.value), (name, str(caught.value))
    with pytest.raises(SignatureInvalid, match="at most"):
        check_signatures([payload(records[0])] * (MAX_SIGNATURES + 1))
    with pytest.raises(SignatureInvalid, match="non-empty list"):
        check_signatures([])
    assert _entries(store) == 0


# ---------------------------------------------------------------- over the API


def _org_user(live: LiveServer, org_id: int | None, *roles: str) -> httpx.Client:
    username = f"org-{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(16)
    create_user(
        live.store,
        username,
        password,
        actor="test",
        roles=roles or ("org-admin",),
        organisation_id=org_id,
    )
    client = httpx.Client(base_url=live.url, timeout=30)
    answer = client.post("/v1/session", json={"username": username, "password": password})
    answer.raise_for_status()
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client


ROUTE = "/v1/organisation/photos/signatures"


def test_an_organisation_registers_only_into_its_own_bank_and_sees_only_its_own(
    store_url: str, tmp_path: Path, records: list[ContentSignals]
) -> None:
    with live_server(store_url, tmp_path / "index") as live:
        with live.store.session() as s:
            a = create_organisation(s, "Club A").id
            b = create_organisation(s, "Club B").id
        with (
            contextlib.closing(_org_user(live, a)) as alice,
            contextlib.closing(_org_user(live, b)) as bob,
        ):
            made = alice.post(ROUTE, json={"photos": [payload(r) for r in records[:2]]})
            assert made.status_code == 200, made.text
            assert [p["file_name"] for p in made.json()["registered"]] == [
                "photo-0.jpg",
                "photo-1.jpg",
            ]
            again = alice.post(ROUTE, json={"photos": [payload(records[0])]})
            assert again.json()["registered"] == [] and len(again.json()["already"]) == 1
            assert again.json()["resigned"] == [] and again.json()["warnings"] == []
            assert made.json()["warnings"] == []
            # A photo too plain to be found reliably is registered, and the answer says so.
            plain = compute_photo_signature(plain_photo(tmp_path / "plain.jpg"))
            warned = alice.post(ROUTE, json={"photos": [payload(plain)]})
            assert warned.status_code == 200, warned.text
            assert [p["file_name"] for p in warned.json()["registered"]] == ["plain.jpg"]
            [warning] = warned.json()["warnings"]
            assert warning["sha256"] == plain.value("sha256")
            assert warning["warning"]["code"] == "plain"
            assert "too plain" in warning["warning"]["reason"]
            listed = alice.get("/v1/organisation/photos").json()["photos"]
            by_name = {p["file_name"]: p["warning"] for p in listed}
            assert by_name["photo-0.jpg"] is None and by_name["plain.jpg"]["code"] == "plain"
            shown = alice.get(f"/v1/organisation/photos/{warning['id']}").json()
            assert "too plain" in shown["warning"]["reason"]

            # Bob sees none of Club A's photos, and cannot name another organisation.
            assert bob.get("/v1/organisation/photos").json()["photos"] == []
            a_id = made.json()["registered"][0]["id"]
            assert bob.get(f"/v1/organisation/photos/{a_id}").status_code == 404
            named = bob.post(ROUTE, json={"photos": [payload(records[2])], "organisation": a})
            assert named.status_code == 422
            inside = bob.post(ROUTE, json={"photos": [payload(records[2], organisation_id=a)]})
            assert inside.status_code == 422 and "organisation_id" in inside.json()["detail"]
            # What Bob registers is Club B's, the same photo as Alice's included.
            mine = bob.post(ROUTE, json={"photos": [payload(records[0])]})
            assert len(mine.json()["registered"]) == 1
            listed = {p["file_name"] for p in alice.get("/v1/organisation/photos").json()["photos"]}
            assert listed == {"photo-0.jpg", "photo-1.jpg", "plain.jpg"}
            assert [
                p["file_name"] for p in bob.get("/v1/organisation/photos").json()["photos"]
            ] == ["photo-0.jpg"]

            # A bad batch: 422 naming the field, and nothing of it is written.
            bad = payload(records[2])
            bad["signature"] = {**bad["signature"], "features": "AAAA"}
            refused = alice.post(ROUTE, json={"photos": [payload(records[2]), bad]})
            assert refused.status_code == 422
            assert refused.json()["type"].endswith("invalid-signature")
            assert "photos[1].signature.features" in refused.json()["detail"]
            assert len(alice.get("/v1/organisation/photos").json()["photos"]) == 3

        # No CSRF token: refused. A user of no organisation, or of another role: refused.
        with contextlib.closing(_org_user(live, a)) as no_csrf:
            del no_csrf.headers["X-CSRF-Token"]
            assert no_csrf.post(ROUTE, json={"photos": [payload(records[2])]}).status_code == 403
        with contextlib.closing(_org_user(live, None)) as nobody:
            answer = nobody.post(ROUTE, json={"photos": [payload(records[2])]})
            assert answer.status_code == 403 and answer.json()["type"].endswith("no-organisation")
        with contextlib.closing(_org_user(live, a, "analyst")) as analyst:
            assert analyst.post(ROUTE, json={"photos": [payload(records[2])]}).status_code == 403
            assert analyst.get("/org/photos/add").status_code == 403
        with live.client() as anonymous:
            assert anonymous.post(ROUTE, json={"photos": []}).status_code == 401
