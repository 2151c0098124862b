"""Which photos a run uses: the capped full run, and the held-out photos beyond its caps."""

from __future__ import annotations

from bench.robustness.corpus import Photo
from bench.robustness.run import FULL_CAPS, _select


def _photos(group: str, n: int) -> list[Photo]:
    return [
        Photo(
            id=f"{group}{i:04d}",
            group=group,
            package="pkg",
            version="1",
            path=f"{group}/{i}",
            licence="x",
            source_sha256=f"{group}{i}",
            prepared_sha256="y",
            split="registered" if i % 2 == 0 else "distractor",
        )
        for i in range(n)
    ]


def test_held_out_is_what_the_capped_run_leaves_out() -> None:
    cap = FULL_CAPS["astro"]
    photos = _photos("astro", cap + 40) + _photos("general", 30)
    reg, dis = _select(photos, None)
    assert sum(p.group == "astro" for p in reg) == cap // 2
    assert sum(p.group == "general" for p in reg) == 15  # no cap on general
    held_reg, held_dis = _select(photos, None, held_out=True)
    assert len(held_reg) == len(held_dis) == 20
    assert {p.group for p in held_reg + held_dis} == {"astro"}
    assert not {p.id for p in held_reg + held_dis} & {p.id for p in reg + dis}
    assert all(p.split == "registered" for p in held_reg)
    assert all(p.split == "distractor" for p in held_dis)
    few_reg, few_dis = _select(photos, 8, held_out=True)
    assert len(few_reg) == len(few_dis) == 4
    assert {p.id for p in few_reg} <= {p.id for p in held_reg}


def test_max_distractors_caps_each_group_and_keeps_the_first() -> None:
    from bench.robustness.run import _cap_distractors

    photos = _photos("astro", 40) + _photos("general", 30)
    _reg, dis = _select(photos, None)
    capped = _cap_distractors(dis, 5)
    assert [p.id for p in capped if p.group == "astro"] == [
        p.id for p in dis if p.group == "astro"
    ][:5]
    assert sum(p.group == "general" for p in capped) == 5
