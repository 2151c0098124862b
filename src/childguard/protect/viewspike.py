"""The view-spike rule: which photos of an organisation's own album are suddenly being viewed
far more than the album's norm (the sign that an album is being harvested).

The rule works on each photo's series of view-count observations, `(observed_at, views)`:

1. Each photo's *latest rate* is the increase between its last two observations divided by the
   hours between them (counter resets, where views go down, count as no increase).
2. The *album norm* for a photo is the median latest rate of the **other** photos
   (leave-one-out, so the spiking photo cannot hide itself in the median), and its spread is
   1.4826 x MAD of those rates. The spread is floored at `min_scale_fraction` x the norm and at
   `min_scale_rate` views per hour: with 2-3 photos the MAD is often 0 and would make any wobble
   look infinite.
3. A photo *spikes* when all of these hold:
   - robust z-score `(rate - norm) / spread >= z_threshold`;
   - `rate >= min_ratio x max(norm, min_scale_rate)` (a ratio floor);
   - the latest increase is at least `min_increase` views (an absolute floor);
   - if the photo has earlier intervals, its rate is also `>= min_ratio x` the median of its own
     earlier rates (a photo that is always the most viewed, or that rises slowly and steadily,
     is its own norm and does not alert).
4. The *album surges* when the album's median latest rate is `>= min_ratio x` the median of all
   earlier rates in the album and the album gained at least `min_increase` views in total: the
   case where a whole album is harvested at once and no photo stands out from the others.

A steady rise (all photos growing, or one photo growing at a constant pace) therefore never
alerts, and a single observation per photo never alerts (there is no increment yet).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise

MAD_TO_SIGMA = 1.4826

Series = Sequence[tuple[datetime, int]]


@dataclass(frozen=True)
class SpikeRule:
    """Thresholds of the rule (see the module docstring)."""

    z_threshold: float = 6.0
    min_ratio: float = 5.0
    min_increase: int = 500
    min_scale_fraction: float = 0.5
    min_scale_rate: float = 1.0  # views per hour

    def __post_init__(self) -> None:
        if self.z_threshold <= 0 or self.min_ratio < 1 or self.min_increase < 0:
            raise ValueError("z_threshold must be > 0, min_ratio >= 1 and min_increase >= 0")
        if self.min_scale_fraction <= 0 or self.min_scale_rate <= 0:
            raise ValueError("min_scale_fraction and min_scale_rate must be > 0")


@dataclass(frozen=True)
class ViewSpike:
    """One photo whose latest views jumped far above the album's norm, with the evidence."""

    photo_key: str
    latest_increase: int
    rate_per_hour: float
    album_norm_per_hour: float
    own_norm_per_hour: float | None
    robust_z: float
    ratio: float
    series: tuple[tuple[datetime, int], ...] = field(repr=False)


@dataclass(frozen=True)
class AlbumSurge:
    """The whole album's views jumped against its own history (no single photo stands out)."""

    median_rate_per_hour: float
    earlier_median_rate_per_hour: float
    total_increase: int
    ratio: float


@dataclass(frozen=True)
class SpikeReport:
    spikes: list[ViewSpike]
    surge: AlbumSurge | None


def _rates(series: Series) -> list[tuple[float, int]]:
    """(views per hour, increase) for each interval of a time-sorted series."""
    out: list[tuple[float, int]] = []
    for (t0, v0), (t1, v1) in pairwise(series):
        hours = (t1 - t0).total_seconds() / 3600.0
        if hours <= 0:
            continue
        increase = max(0, v1 - v0)
        out.append((increase / hours, increase))
    return out


def _clean(series: Series) -> list[tuple[datetime, int]]:
    by_time: dict[datetime, int] = {}
    for at, views in series:
        if views < 0:
            raise ValueError(f"view count must be >= 0, got {views}")
        by_time[at] = int(views)
    return sorted(by_time.items())


def _norm_and_spread(values: list[float], rule: SpikeRule) -> tuple[float, float]:
    if not values:
        return 0.0, rule.min_scale_rate
    norm = statistics.median(values)
    mad = statistics.median(abs(v - norm) for v in values)
    spread = max(MAD_TO_SIGMA * mad, rule.min_scale_fraction * norm, rule.min_scale_rate)
    return norm, spread


def detect_spikes(album: Mapping[str, Series], rule: SpikeRule | None = None) -> SpikeReport:
    """Apply the rule to an album: `album` maps a photo key to its view-count series."""
    rule = rule or SpikeRule()
    cleaned = {key: _clean(series) for key, series in album.items()}
    intervals = {key: _rates(series) for key, series in cleaned.items()}
    latest = {key: iv[-1] for key, iv in intervals.items() if iv}

    spikes: list[ViewSpike] = []
    for key, (rate, increase) in latest.items():
        others = [r for k, (r, _) in latest.items() if k != key]
        if not others:
            continue  # a one-photo album has no norm; only its own history could speak, see surge
        norm, spread = _norm_and_spread(others, rule)
        z = (rate - norm) / spread
        ratio = rate / max(norm, rule.min_scale_rate)
        earlier = [r for r, _ in intervals[key][:-1]]
        own_norm = statistics.median(earlier) if earlier else None
        above_own = own_norm is None or rate >= rule.min_ratio * max(own_norm, rule.min_scale_rate)
        if (
            z >= rule.z_threshold
            and ratio >= rule.min_ratio
            and increase >= rule.min_increase
            and above_own
        ):
            spikes.append(
                ViewSpike(
                    photo_key=key,
                    latest_increase=increase,
                    rate_per_hour=rate,
                    album_norm_per_hour=norm,
                    own_norm_per_hour=own_norm,
                    robust_z=z,
                    ratio=ratio,
                    series=tuple(cleaned[key]),
                )
            )
    spikes.sort(key=lambda s: s.rate_per_hour, reverse=True)
    return SpikeReport(spikes=spikes, surge=_album_surge(intervals, latest, rule))


def _album_surge(
    intervals: Mapping[str, list[tuple[float, int]]],
    latest: Mapping[str, tuple[float, int]],
    rule: SpikeRule,
) -> AlbumSurge | None:
    earlier = [r for iv in intervals.values() for r, _ in iv[:-1]]
    if not latest or not earlier:
        return None
    median_now = statistics.median(r for r, _ in latest.values())
    median_before = statistics.median(earlier)
    total = sum(inc for _, inc in latest.values())
    ratio = median_now / max(median_before, rule.min_scale_rate)
    if ratio >= rule.min_ratio and total >= rule.min_increase:
        return AlbumSurge(median_now, median_before, total, ratio)
    return None
