"""The matcher ranks a derived PDQ view's match at its distance plus its margin: content whose
mirror image looks like another listed photo is reported first as its own photo, found by its
original hash (real pipeline hashing, real store, SQLite and PostgreSQL)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from childguard.banks import EntryRecord, create_bank, import_records
from childguard.matcher import Matcher
from childguard.media import Content
from childguard.pipeline import HashOptions, signals_of
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_VIEW_THRESHOLD,
    PdqSignal,
    pdq_from_pixels,
)
from childguard.store.db import Store
from sample_media import blocks_photo


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def test_a_mirrored_look_alike_comes_after_the_photo_itself(store: Store) -> None:
    photo = blocks_photo(7)
    copy = np.asarray(Image.fromarray(photo).resize((100, 75), Image.Resampling.BILINEAR))
    own_hash = pdq_from_pixels(photo)[0]
    look_alike = pdq_from_pixels(np.ascontiguousarray(copy[:, ::-1]))[0]
    create_bank(store, "ka", "known-abuse", actor="t")
    records = [EntryRecord("pdq", own_hash), EntryRecord("pdq", look_alike)]
    import_records(store, "ka", records, actor="t")
    record = signals_of(Content(_png(copy), origin="copy.png"), HashOptions(robust=True))
    own = PdqSignal.distance(own_hash, record.value(PdqSignal.name) or "")
    assert 0 < own < DEFAULT_THRESHOLD - DIHEDRAL_VIEW_THRESHOLD
    matches = Matcher(store, persist=False).match(record).matches
    assert [(m.value, m.variant, m.distance) for m in matches] == [
        (own_hash, "original", own),
        (look_alike, "flipy", 0),
    ]
