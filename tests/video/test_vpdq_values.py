"""vPDQ values without video: parsing and validation, python-threatexchange's formats,
thresholds, and comparison as ThreatExchange's brute-force matcher does it."""

from __future__ import annotations

import json
import random

import pytest
import vpdq

import pdq_bits
from childguard.errors import InvalidSignal
from childguard.index.base import SignalComparison
from childguard.signals.vpdq import (
    DEFAULT_VPDQ_THRESHOLD,
    VpdqFrame,
    VpdqSignal,
    VpdqThreshold,
    frames_to_value,
    parse_frames,
)

rng = random.Random(7)


def rand_hex() -> str:
    return pdq_bits.rand_hex(rng)


def flip(hex_: str, bits: int) -> str:
    return pdq_bits.flip(hex_, bits, rng)


def value(hexes: list[str], quality: int = 100) -> str:
    return frames_to_value(VpdqFrame(h, quality, float(i)) for i, h in enumerate(hexes))


def pytx_signal(frames: list[tuple[str, int, float]]) -> str:
    """How python-threatexchange writes a vpdq signal (json.dumps, `{:.3}` timestamps)."""
    return json.dumps([f"{h},{q},{t:.3}" for h, q, t in frames])


def test_pytx_signal_strings_import_and_ours_read_back_the_pytx_way() -> None:
    frames = [(rand_hex(), 100, 0.0), (rand_hex(), 70, 1.0), (rand_hex(), 12, 125.5)]
    ours = VpdqSignal.validate(pytx_signal(frames))
    assert " " not in ours
    # python-threatexchange's reader: json list, each "hex,quality,timestamp".
    read = [s.split(",") for s in json.loads(ours)]
    # (pytx's `{:.3}` keeps three significant digits: 125.5 was written as 1.26e+02.)
    assert [(h, int(q), float(t)) for h, q, t in read] == [
        (h, q, float(f"{t:.3}")) for h, q, t in frames
    ]
    assert VpdqSignal.validate(ours) == ours  # canonical is a fixed point


def test_old_pytx_object_form_with_vpdq_words() -> None:
    h = rand_hex()
    words = vpdq.str_to_hash(h)["w"]  # vpdq's own 16-word form of the hash
    old = json.dumps({"0": {"quality": 90, "hash": {"w": words}, "timestamp": 0.0}})
    assert parse_frames(VpdqSignal.validate(old)) == [VpdqFrame(h, 90, 0.0)]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("not json", "not JSON"),
        ('"a string"', "JSON list"),
        ("[]", "no frames"),
        ("[1]", "frame 0"),
        (json.dumps(["abc,100,0.0"]), "64 hex"),
        (json.dumps(["f" * 64 + ",101,0.0"]), "outside 0..100"),
        (json.dumps(["f" * 64 + ",50,-1"]), "time in seconds"),
        (json.dumps(["f" * 64 + ",50"]), "3 comma-separated"),
        (json.dumps(["f" * 64 + ",x,0"]), "whole number"),
        (json.dumps(["f" * 64 + ",50,nan"]), "time in seconds"),
    ],
)
def test_malformed_values_are_rejected_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(InvalidSignal, match=why):
        VpdqSignal.validate(raw)
    assert not VpdqSignal.claims(raw)


def test_claims_only_vpdq_lists() -> None:
    assert VpdqSignal.claims(value([rand_hex()]))
    assert not VpdqSignal.claims(rand_hex())


def brute(query: list[VpdqFrame], bank: list[VpdqFrame]) -> tuple[float, float]:
    """ThreatExchange's vpdq_brute_matcher, restated: quality filter, dedupe, any-within-31."""

    def prep(fs: list[VpdqFrame]) -> list[str]:
        seen: dict[str, None] = {}
        for f in fs:
            if f.quality >= 50:
                seen.setdefault(f.pdq_hex)
        return list(seen)

    def dist(a: str, b: str) -> int:
        return (int(a, 16) ^ int(b, 16)).bit_count()

    q, b = prep(query), prep(bank)
    qm = sum(any(dist(x, y) <= 31 for y in b) for x in q)
    bm = sum(any(dist(y, x) <= 31 for x in q) for y in b)
    return 100.0 * qm / len(q), 100.0 * bm / len(b)


def test_compare_agrees_with_the_brute_force_matcher() -> None:
    for _ in range(30):
        base = [rand_hex() for _ in range(rng.randint(1, 12))]
        bank = [VpdqFrame(h, rng.choice([100, 80, 49, 10]), float(i)) for i, h in enumerate(base)]
        bank += bank[: rng.randint(0, 3)]  # repeated frames
        query = [
            VpdqFrame(flip(h, rng.choice([0, 10, 25, 31, 32, 60])), rng.choice([100, 60, 30]), 0.0)
            for h in rng.sample(base, rng.randint(1, len(base)))
        ] + [VpdqFrame(rand_hex(), 100, 0.0) for _ in range(rng.randint(0, 3))]
        a, b = frames_to_value(query), frames_to_value(bank)
        if not any(f.quality >= 50 for f in query) or not any(f.quality >= 50 for f in bank):
            assert VpdqSignal.compare(a, b).detail == {
                "query_match_percent": 0.0,
                "bank_match_percent": 0.0,
            }
            continue
        qp, bp = brute(query, bank)
        got = VpdqSignal.compare(a, b)
        assert got.detail is not None
        assert got.detail["query_match_percent"] == pytest.approx(qp)
        assert got.detail["bank_match_percent"] == pytest.approx(bp)
        assert got.match == (qp >= 80 and bp >= 0)
        assert got.distance == round(100 - qp)


def test_frames_at_distance_31_match_and_32_do_not() -> None:
    h = rand_hex()
    assert VpdqSignal.compare(value([flip(h, 31)]), value([h])).match
    assert not VpdqSignal.compare(value([flip(h, 32)]), value([h])).match


def test_low_quality_frames_are_dropped() -> None:
    good, weak = rand_hex(), rand_hex()
    bank = frames_to_value([VpdqFrame(good, 100, 0.0), VpdqFrame(weak, 49, 1.0)])
    result = VpdqSignal.compare(value([good]), bank)
    assert result.detail == {"query_match_percent": 100.0, "bank_match_percent": 100.0}


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        (None, VpdqThreshold(80.0, 0.0)),
        ("80,50", VpdqThreshold(80.0, 50.0)),
        ("70", VpdqThreshold(70.0, 0.0)),
        ("90%/10%", VpdqThreshold(90.0, 10.0)),
        ({"query": 60, "bank": 40}, VpdqThreshold(60.0, 40.0)),
        ({"query_match_percent": 60, "compared_match_percent": 40}, VpdqThreshold(60.0, 40.0)),
        ('{"bank": 25}', VpdqThreshold(80.0, 25.0)),
        ((50, 50), VpdqThreshold(50.0, 50.0)),
        (75, VpdqThreshold(75.0, 0.0)),
        (VpdqThreshold(1, 2), VpdqThreshold(1, 2)),
    ],
)
def test_parse_threshold(raw: object, want: VpdqThreshold) -> None:
    assert VpdqSignal.parse_threshold(raw) == want
    assert VpdqSignal.parse_threshold(str(want)) == want  # the stored form reads back


@pytest.mark.parametrize("raw", ["", "a,b", "1,2,3", "120", {"x": 1}, [1], True, "-5"])
def test_bad_thresholds_are_value_errors(raw: object) -> None:
    with pytest.raises(ValueError):
        VpdqSignal.parse_threshold(raw)


def test_within_and_loosest() -> None:
    c = SignalComparison(True, 30, {"query_match_percent": 70.0, "bank_match_percent": 40.0})
    assert VpdqSignal.within(c, "70,40")
    assert not VpdqSignal.within(c, DEFAULT_VPDQ_THRESHOLD)
    assert not VpdqSignal.within(c, "60,50")
    loose = VpdqSignal.loosest(["80,50", VpdqThreshold(90, 10), {"query": 85}])
    assert loose == VpdqThreshold(80.0, 0.0)
    assert VpdqSignal.loosest([]) == DEFAULT_VPDQ_THRESHOLD


def test_store_key_is_the_digest_of_the_canonical_value() -> None:
    v = value([rand_hex(), rand_hex()])
    spaced = json.dumps(json.loads(v))  # python-threatexchange spacing, same frames
    assert VpdqSignal.store_key(VpdqSignal.validate(spaced)) == VpdqSignal.store_key(v)
    assert len(VpdqSignal.store_key(v)) == 64


def test_te_lists_move_between_pytx_and_us() -> None:
    """A python-threatexchange `local_file` line (`vpdq <signal string>`, spaces and all)
    imports; our export is `vpdq <canonical value>`, which pytx's reader splits at the first
    space and json-loads."""
    import io

    from childguard.banks.formats import ReadOptions, WriteOptions, get_format
    from childguard.banks.records import EntryRecord

    te = get_format("te")
    frames = [(rand_hex(), 100, 0.0), (rand_hex(), 90, 1.0)]
    text = f"vpdq {pytx_signal(frames)}\nvideo_vpdq {pytx_signal(frames[:1])}\nvpdq [1, 2]\n"
    read = list(te.read(io.StringIO(text), ReadOptions()))
    assert [type(r).__name__ for r in read] == ["EntryRecord", "EntryRecord", "InvalidRecord"]
    first = read[0]
    assert isinstance(first, EntryRecord) and first.signal_type == "vpdq"
    assert first.value == VpdqSignal.validate(pytx_signal(frames))
    out = io.StringIO()
    te.write([first], out, WriteOptions())
    signal_type, _, signal = out.getvalue().strip().partition(" ")
    assert signal_type == "vpdq"
    assert [s.split(",")[0] for s in json.loads(signal)] == [h for h, _, _ in frames]
