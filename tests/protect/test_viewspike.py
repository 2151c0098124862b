"""The view-spike rule on small albums, steady growth, album surges and counter resets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from childguard.protect.viewspike import SpikeRule, detect_spikes

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def series(*views: int, hours: float = 24.0) -> list[tuple[datetime, int]]:
    return [(T0 + timedelta(hours=hours * i), v) for i, v in enumerate(views)]


def test_two_photo_album_flags_the_one_that_jumps() -> None:
    album = {"a.jpg": series(300, 320, 340), "b.jpg": series(310, 330, 200_330)}
    report = detect_spikes(album)
    assert [s.photo_key for s in report.spikes] == ["b.jpg"]
    spike = report.spikes[0]
    assert spike.latest_increase == 200_000
    assert spike.series == tuple(album["b.jpg"])
    assert spike.own_norm_per_hour == pytest.approx(20 / 24)


def test_three_photo_album_with_one_spike_and_no_history() -> None:
    album = {"a": series(100, 150), "b": series(90, 160), "c": series(120, 60_000)}
    report = detect_spikes(album)
    assert [s.photo_key for s in report.spikes] == ["c"]
    assert report.surge is None


def test_two_photos_that_both_wobble_do_not_alert() -> None:
    album = {"a": series(100, 110, 140), "b": series(100, 200, 260)}
    assert detect_spikes(album).spikes == []


def test_slow_steady_rise_of_the_whole_album_never_alerts() -> None:
    album = {f"p{i}": series(*[200 + i * 10 + day * 150 for day in range(14)]) for i in range(12)}
    report = detect_spikes(album)
    assert report.spikes == [] and report.surge is None


def test_a_popular_photo_rising_steadily_is_its_own_norm() -> None:
    album = {f"p{i}": series(*[100 + day * 50 for day in range(10)]) for i in range(6)}
    album["cover"] = series(*[1000 + day * 5000 for day in range(10)])  # always 100x the rest
    assert detect_spikes(album).spikes == []


def test_a_gradually_accelerating_photo_does_not_alert() -> None:
    views, total = [], 500
    for day in range(20):
        total += int(50 * 1.15**day)  # +15% a day: grows, but never jumps
        views.append(total)
    album = {f"p{i}": series(*[100 + d * 50 for d in range(20)]) for i in range(4)}
    album["slow"] = series(*views)
    assert detect_spikes(album).spikes == []


def test_the_same_photo_jumping_after_a_steady_history_alerts() -> None:
    album = {f"p{i}": series(*[100 + d * 50 for d in range(10)]) for i in range(6)}
    album["camp"] = series(*[100 + d * 50 for d in range(9)], 100 + 8 * 50 + 250_000)
    report = detect_spikes(album)
    assert [s.photo_key for s in report.spikes] == ["camp"]
    assert report.spikes[0].robust_z > 6


def test_absolute_floor_keeps_tiny_albums_quiet() -> None:
    # 10x the norm, but only 300 more views: below min_increase.
    album = {"a": series(10, 40), "b": series(10, 340)}
    assert detect_spikes(album).spikes == []
    assert [s.photo_key for s in detect_spikes(album, SpikeRule(min_increase=100)).spikes] == ["b"]


def test_whole_album_surge_is_reported_when_no_photo_stands_out() -> None:
    album = {f"p{i}": series(100, 150, 200, 200 + 40_000 + i * 500) for i in range(5)}
    report = detect_spikes(album)
    assert report.spikes == []
    assert report.surge is not None and report.surge.ratio > 100


def test_single_observation_or_single_photo_never_alerts() -> None:
    assert detect_spikes({"a": series(5), "b": series(1_000_000)}).spikes == []
    assert detect_spikes({"only": series(10, 500_000)}).spikes == []


def test_counter_reset_is_not_a_spike_and_irregular_intervals_are_rates() -> None:
    album = {"a": series(5000, 5100, 20), "b": series(4000, 4100, 4200)}
    assert detect_spikes(album).spikes == []
    # b's last interval is 1 hour long: 2,000 views in an hour is a far higher rate than a's day.
    album = {
        "a": [(T0, 100), (T0 + timedelta(hours=24), 2100)],
        "b": [(T0, 100), (T0 + timedelta(hours=23), 200), (T0 + timedelta(hours=24), 2200)],
    }
    assert [s.photo_key for s in detect_spikes(album).spikes] == ["b"]


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="view count"):
        detect_spikes({"a": series(-1, 5)})
    with pytest.raises(ValueError):
        SpikeRule(min_ratio=0.5)


@settings(max_examples=60, deadline=None)
@given(
    base=st.integers(min_value=1, max_value=5000),
    jitter=st.lists(st.floats(min_value=0.5, max_value=2.0), min_size=2, max_size=30),
)
def test_rates_within_a_factor_of_two_never_spike(base: int, jitter: list[float]) -> None:
    album = {f"p{i}": series(1000, 1000 + int(base * j)) for i, j in enumerate(jitter)}
    assert detect_spikes(album).spikes == []
