"""Album view counts from crawl runs into the organisation's series, and the view-spike alerts
(real SQLite store; the crawl's PageCounter rows are written as the crawler writes them)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from childguard.protect.albums import album_series, check_album_run, record_album_views
from childguard.protect.organisations import create_organisation, get_organisation
from childguard.protect.register import store_signature
from childguard.signals.content import ContentSignals
from childguard.store import Store, open_store
from childguard.store.crawl_models import CrawlRun, PageCounter
from childguard.store.protect_models import Alert, ViewObservation

ALBUM = "http://album.example.org/camp/"
T0 = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with s.session() as session:
        org = create_organisation(session, "Scouts")
        sig = ContentSignals(path="b.jpg", size=100, width=10, height=10)
        for name, value in (("md5", "0" * 32), ("sha1", "0" * 40), ("sha256", "1" * 64)):
            sig.set(name, value)
        sig.set("pdq", "f" * 64, 100)
        store_signature(session, org, sig, published_url=ALBUM + "b.jpg")
    yield s
    s.close()


def add_run(store: Store, at: datetime, views: dict[str, int]) -> int:
    """One album crawl run as the crawler stores it: a page-level row and one row per photo."""
    with store.session() as s:
        run = CrawlRun(watch_name="scouts-album")
        s.add(run)
        s.flush()
        s.add(PageCounter(run_id=run.id, page_url=ALBUM, image_url="", observed_at=at, views=None))
        for name, v in views.items():
            s.add(
                PageCounter(
                    run_id=run.id, page_url=ALBUM, image_url=ALBUM + name, observed_at=at, views=v
                )
            )
        return run.id


def check(store: Store, run_id: int) -> tuple[int, list[str], list[int]]:
    with store.session() as s:
        result = check_album_run(s, get_organisation(s, "Scouts"), run_id)
        return (
            result.observations_added,
            [spike.photo_key for _, spike in result.spikes],
            result.alert_ids,
        )


def test_a_jump_in_one_photo_queues_one_alert_with_the_series(store: Store) -> None:
    r1 = add_run(store, T0, {"a.jpg": 300, "b.jpg": 310, "c.jpg": 290})
    r2 = add_run(store, T0 + timedelta(days=1), {"a.jpg": 320, "b.jpg": 330, "c.jpg": 305})
    r3 = add_run(store, T0 + timedelta(days=2), {"a.jpg": 345, "b.jpg": 200_330, "c.jpg": 322})
    assert check(store, r1) == (3, [], [])
    assert check(store, r2) == (3, [], [])
    added, spikes, alerts = check(store, r3)
    assert (added, spikes, len(alerts)) == (3, [ALBUM + "b.jpg"], 1)
    with store.session() as s:
        alert = s.get(Alert, alerts[0])
        assert alert is not None and alert.kind == "view-spike"
        assert alert.payload["photo"] == ALBUM + "b.jpg"
        assert alert.payload["latest_increase"] == 200_000
        assert [v for _, v in alert.payload["series"]] == [310, 330, 200_330]
        linked = s.scalars(
            select(ViewObservation.protected_photo_id).where(
                ViewObservation.photo_key == ALBUM + "b.jpg"
            )
        ).all()
        assert len(linked) == 3 and all(pid is not None for pid in linked)  # by published URL
        other = s.scalars(
            select(ViewObservation.protected_photo_id).where(
                ViewObservation.photo_key == ALBUM + "a.jpg"
            )
        ).all()
        assert set(other) == {None}  # not a registered photo


def test_rechecking_a_run_adds_nothing_and_alerts_once(store: Store) -> None:
    r1 = add_run(store, T0, {"a.jpg": 300, "b.jpg": 310, "c.jpg": 290})
    r2 = add_run(store, T0 + timedelta(hours=6), {"a.jpg": 301, "b.jpg": 90_000, "c.jpg": 292})
    with store.session() as s:
        org = get_organisation(s, "Scouts")
        assert record_album_views(s, org, r1) == (3, {ALBUM})
        assert record_album_views(s, org, r1) == (0, {ALBUM})
    first = check(store, r2)
    second = check(store, r2)
    assert first[0] == 3 and len(first[2]) == 1
    assert second == (0, [ALBUM + "b.jpg"], [])  # still a spike, but no second alert
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(ViewObservation)) == 6
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
        series = album_series(s, get_organisation(s, "Scouts"), ALBUM)
    assert [v for _, v in series[ALBUM + "b.jpg"]] == [310, 90_000]


def test_steady_growth_never_alerts(store: Store) -> None:
    runs = [
        add_run(store, T0 + timedelta(days=d), {"a.jpg": 300 + 50 * d, "b.jpg": 1000 + 400 * d})
        for d in range(4)
    ]
    assert all(check(store, r)[1] == [] for r in runs)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 0


def test_a_run_without_per_photo_counters_records_nothing(store: Store) -> None:
    with store.session() as s:
        run = CrawlRun(watch_name="elsewhere")
        s.add(run)
        s.flush()
        s.add(PageCounter(run_id=run.id, page_url=ALBUM, image_url="", observed_at=T0, views=9))
        run_id = run.id
    assert check(store, run_id) == (0, [], [])


def test_album_and_photo_urls_of_any_length(store_url: str) -> None:
    """On SQLite and PostgreSQL alike: URLs longer than any B-tree row keep their series."""
    import secrets

    album = "https://album.example.org/camp/?session=" + secrets.token_hex(1300)
    photo = album.replace("/camp/", "/camp/b.jpg") + "&v=" + secrets.token_hex(200)
    others = {f"https://album.example.org/{n}.jpg": 300 for n in ("a", "c", "d")}
    opened = open_store(store_url)
    try:
        with opened.session() as s:
            create_organisation(s, "Scouts")
        runs = []
        for day, views in enumerate((310, 330, 200_330)):
            with opened.session() as s:
                run = CrawlRun(watch_name="scouts-album")
                s.add(run)
                s.flush()
                at = T0 + timedelta(days=day)
                for url, v in [(photo, views)] + [(u, v + 10 * day) for u, v in others.items()]:
                    s.add(
                        PageCounter(
                            run_id=run.id, page_url=album, image_url=url, observed_at=at, views=v
                        )
                    )
                runs.append(run.id)
        with opened.session() as s:
            org = get_organisation(s, "Scouts")
            results = [check_album_run(s, org, run_id) for run_id in runs]
            assert [r.observations_added for r in results] == [4, 4, 4]
            assert [spike.photo_key for _, spike in results[-1].spikes] == [photo]
            assert [v for _, v in album_series(s, org, album)[photo]] == [310, 330, 200_330]
            assert record_album_views(s, org, runs[-1])[0] == 0  # nothing twice
    finally:
        opened.close()
