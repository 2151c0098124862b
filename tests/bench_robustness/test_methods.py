"""The four benchmark methods side by side on synthetic photos, through metrics and the report."""

from __future__ import annotations

import numpy as np
from bench.robustness.methods import METHODS, Method
from bench.robustness.metrics import Outcome, summarise
from bench.robustness.run import markdown
from bench.robustness.transforms import apply
from PIL import Image

from childguard.robust.query import query_hashes
from childguard.signals.pdq import (
    DEFAULT_THRESHOLD,
    DIHEDRAL_VIEW_THRESHOLD,
    PdqSignal,
    pdq_from_pixels,
    repeats_itself,
    view_cap,
)
from sample_media import blocks_photo


def test_methods_report_and_robust_pipelines_beat_reference() -> None:
    registered = {f"r{i}": blocks_photo(i) for i in range(5)}
    distractors = {f"d{i}": blocks_photo(100 + i) for i in range(3)}
    methods: list[Method] = [cls() for cls in METHODS.values()]
    for m in methods:
        m.register(registered)
    outcomes: list[Outcome] = []
    for name in ("jpeg50", "pad20", "hflip"):
        for pid, px in {**registered, **distractors}.items():
            q = np.asarray(apply(name, Image.fromarray(px), pid).convert("RGB"))
            shared: dict[str, object] = {}
            for m in methods:
                a = m.query(q, shared)
                reg = pid in registered
                outcomes.append(
                    Outcome(
                        m.name,
                        name,
                        "g",
                        reg,
                        reg and a.photo == pid,
                        a.match,
                        a.score,
                        a.hash_ms,
                        a.match_ms,
                    )
                )
    cells = summarise(outcomes)
    for m in METHODS:
        assert cells[(m, "jpeg50", "g")].recall == 1.0
        assert cells[(m, "jpeg50", "g")].fpr == 0.0
    assert cells[("pdq", "pad20", "g")].recall < 0.5
    assert cells[("pdq", "hflip", "g")].recall < 0.5
    for robust in ("childguard-known-abuse", "childguard-protected"):
        assert cells[(robust, "pad20", "g")].recall == 1.0
        assert cells[(robust, "hflip", "g")].recall == 1.0
    meta = {
        "quick": True,
        "registered": {"g": 5},
        "distractors": {"g": 3},
        "elapsed_s": 1.0,
        "cpus": 2,
        "workers": 1,
        "load_start": 0.0,
        "load_end": 0.0,
        "transforms": ["jpeg50", "pad20", "hflip"],
    }
    text = markdown(meta, outcomes)
    assert "| pad20 |" in text and "#### Targets" in text


def test_known_abuse_no_dihedral_drops_only_the_rotation_flip_views() -> None:
    registered = {f"r{i}": blocks_photo(i) for i in range(3)}
    with_d = METHODS["childguard-known-abuse"]()
    without = METHODS["childguard-known-abuse-no-dihedral"]()
    for m in (with_d, without):
        m.register(registered)
    for pid, px in registered.items():
        flipped = np.asarray(apply("hflip", Image.fromarray(px), pid).convert("RGB"))
        padded = np.asarray(apply("pad20", Image.fromarray(px), pid).convert("RGB"))
        assert with_d.query(flipped, {}).match
        assert not without.query(flipped, {}).match
        a = without.query(padded, {})
        assert a.match and a.photo == pid


def test_known_abuse_ranks_the_original_above_a_look_alike_found_through_a_mirror() -> None:
    """A listed photo and a look-alike of its mirror image (here the mirror of the very copy
    queried): the copy's mirrored view is 0 bits from the look-alike, its original hash a few
    bits from its own photo. The original's match counts as its distance, the mirrored view's
    as 0 plus its margin (31 less its cap), so the harness names the right photo, as the matcher
    orders them; it scores the answer by that rank."""
    photo = blocks_photo(7)
    copy = np.asarray(apply("resize0.25", Image.fromarray(photo), "p").convert("RGB"))
    method = METHODS["childguard-known-abuse"]()
    method.register({"p": photo, "mirror-look-alike": np.ascontiguousarray(copy[:, ::-1])})
    answer = method.query(copy, {})
    own = PdqSignal.distance(pdq_from_pixels(photo)[0], pdq_from_pixels(copy)[0])
    assert 0 < own < DEFAULT_THRESHOLD - DIHEDRAL_VIEW_THRESHOLD
    assert (answer.photo, answer.score, answer.match) == ("p", -own, True)


def test_known_abuse_scores_a_derived_view_by_its_rank() -> None:
    """A mirrored copy is found through its `flipy` view at 0 bits, scored minus its margin (31
    less the rotations' and flips' cap): an original hash's match at fewer bits ranks above."""
    photo = blocks_photo(8)
    method = METHODS["childguard-known-abuse"]()
    method.register({"p": photo})
    answer = method.query(np.ascontiguousarray(photo[:, ::-1]), {})
    assert answer.photo == "p" and answer.match
    assert answer.score == -float(DEFAULT_THRESHOLD - DIHEDRAL_VIEW_THRESHOLD)


def _bright_disc(cy: int, cx: int, r: int) -> np.ndarray:
    """A dark frame with one bright disc: a photo with next to no structure, whose PDQ hash
    repeats itself (`signals.pdq.repeats_itself`)."""
    y, x = np.mgrid[0:256, 0:256]
    grey = np.where((y - cy) ** 2 + (x - cx) ** 2 < r * r, 200, 5).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=2))


def test_known_abuse_matches_a_repeating_photo_through_the_original_hash_only() -> None:
    """Turned half round, a bare photo's copy is 0-few bits from it through the `rot180` view,
    but a derived view never matches a repeating hash, as in the matcher; the copy as it is
    matches through the original hash."""
    bare = _bright_disc(70, 100, 12)
    assert repeats_itself(pdq_from_pixels(bare)[0])
    method = METHODS["childguard-known-abuse"]()
    method.register({"bare": bare, "p": blocks_photo(8)})
    turned = np.ascontiguousarray(bare[::-1, ::-1])
    views = {v.variant: v for v in query_hashes(turned)}
    near = PdqSignal.distance(views["rot180"].pdq, pdq_from_pixels(bare)[0])
    assert near <= view_cap("rot180", views["rot180"].quality)  # it would have matched
    answer = method.query(turned, {})
    assert not (answer.photo == "bare" and answer.match)
    assert PdqSignal.distance(pdq_from_pixels(turned)[0], pdq_from_pixels(bare)[0]) > 31
    same = method.query(bare, {})
    assert (same.photo, same.match, same.score) == ("bare", True, 0.0)
