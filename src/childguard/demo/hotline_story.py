# Owns the demo's hotline chapter: a report through the French form, items, votes, inheritance.
"""The hotline, end to end against the real service: `run_hotline(...) -> HotlineResult`.

1. a local image-sharing site on 127.0.0.1 hosts benign demo photos: a gallery page holding
   the first photo twice (once under a second name, the same bytes) and a re-encoded copy of
   it, beside two other photos (the report names one of those directly too); a demo
   known-abuse bank holds only the **hashes** of the first photo (a benign stand-in for a
   hotline's list);
2. the service (`create_app` under uvicorn on a free port, `allow_private_fetch` for the local
   site) takes a report through the public form in French (`GET /report?lang=fr` for the
   form token, then `POST /report`), and its own job runner fetches, traces, hashes and
   matches what the URLs hold: one item per picture, the exact copy folded into its item,
   the re-encoded copy linked to it as a near duplicate;
3. the matched item is first in the queue; two analysts (made through
   `childguard.accounts.users`) sign in, take it from `/v1/hotline/queue/next` and each record
   a vote, so its assessment is `final`;
4. a second report (the form again) of another URL serving another re-encoded copy makes an
   item that inherits that assessment and never enters the queue.

Each step prints what it did; the last line counts reports, items, duplicates folded and the
share of items that inherited an assessment.
"""

from __future__ import annotations

import contextlib
import io
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from rich.console import Console
from sqlalchemy import func, select

from childguard.accounts.users import create_user
from childguard.banks import EntryRecord, add_entries, create_bank
from childguard.demo.service import free_port, patched_environment, running_service
from childguard.demo.sites import ServedFolder, jpeg_bytes, load_photo
from childguard.demo.takedown_story import (
    Mailbox,
    TakedownResult,
    run_takedown,
    smtp_environment,
)
from childguard.errors import ChildguardError
from childguard.hotline.items import inherited_share
from childguard.hotline.reports import report_urls, tracking_hash
from childguard.pipeline import hash_bytes
from childguard.service import Settings
from childguard.store.db import Store
from childguard.store.hotline_models import Item, ItemPlace, Report

DEMO_BANK = "DEMO_KNOWN_ABUSE"
BANKED_SIGNALS = ("sha256", "md5", "pdq")
# The facts the two analysts record for the stand-in: an outcome that puts its hashes into
# the hotline's own bank, so the second report's copy is recognised both ways.
STAND_IN_FACTS = {"age_band": "prepubescent", "severity": "A"}
SETTLED_STATES = ("in-review", "assessed", "fetch-failed")
WAIT_SECONDS = 60.0
PHOTO_SIDE = 800
# The site's copies of the assessed picture, which its host takes down in chapter 7.
ASSESSED_COPIES = ("photo-1.jpg", "photo-1-copy.jpg", "photo-1-small.jpg", "photo-1-repost.jpg")


class HotlineDemoError(ChildguardError):
    """A step of the hotline chapter did not happen; the message says which."""


@dataclass
class HotlineResult:
    """What the hotline chapter did, for the summary, the tests and the benchmark."""

    reports: int = 0
    items: int = 0
    pictures: int = 0  # items that are not near duplicates of another
    exact_folded: int = 0  # places that landed on an item already made
    near_folded: int = 0  # items linked to the item they duplicate
    inherited: int = 0
    inherited_share: float = 0.0
    matched_item: int | None = None
    first_in_queue: int | None = None
    vote_statuses: list[str] = field(default_factory=list)
    final_outcome: str | None = None
    second_item: int | None = None
    second_item_state: str | None = None
    second_url_state: str | None = None
    queue_before_second: list[int] = field(default_factory=list)
    queue_after_second: list[int] = field(default_factory=list)
    url_states: dict[str, str] = field(default_factory=dict)
    tracking_codes: list[str] = field(default_factory=list)
    takedown: TakedownResult | None = None
    elapsed_s: float = 0.0

    @property
    def duplicates_folded(self) -> int:
        return self.exact_folded + self.near_folded


@dataclass
class HotlineSite:
    """The demo's image-sharing site for the hotline: plain files served on 127.0.0.1."""

    root: Path
    served: ServedFolder | None = None

    @classmethod
    def build(cls, root: Path, sources: Sequence[Path]) -> HotlineSite:
        if len(sources) < 3:
            raise HotlineDemoError("the hotline chapter needs at least three photos")
        (root / "i").mkdir(parents=True, exist_ok=True)
        (root / "gallery").mkdir(parents=True, exist_ok=True)
        first = load_photo(sources[0], PHOTO_SIDE)
        original = jpeg_bytes(first)
        (root / "i" / "photo-1.jpg").write_bytes(original)
        (root / "i" / "photo-1-copy.jpg").write_bytes(original)  # the same bytes again
        (root / "i" / "photo-1-small.jpg").write_bytes(_reencoded(first, 0.5, 70))
        (root / "i" / "photo-1-repost.jpg").write_bytes(_reencoded(first, 0.6, 55))
        for n, src in enumerate(sources[1:3], start=2):
            (root / "i" / f"photo-{n}.jpg").write_bytes(jpeg_bytes(load_photo(src, PHOTO_SIDE)))
        images = (
            "photo-1.jpg",
            "photo-1-copy.jpg",
            "photo-1-small.jpg",
            "photo-2.jpg",
            "photo-3.jpg",
        )
        body = "\n".join(f"<img src='/i/{name}' alt=''>" for name in images)
        (root / "gallery" / "index.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'><title>Gallery</title></head>"
            f"<body><h1>Shared photos</h1>\n{body}\n</body></html>\n"
        )
        return cls(root)

    @property
    def original(self) -> bytes:
        """The stand-in photo's bytes, whose hashes the demo bank holds."""
        return (self.root / "i" / "photo-1.jpg").read_bytes()

    def url(self, path: str) -> str:
        if self.served is None:
            raise RuntimeError("the site is not started")
        return f"http://127.0.0.1:{self.served.port}{path}"

    def start(self) -> HotlineSite:
        self.served = ServedFolder(self.root).start()
        return self

    def stop(self) -> None:
        if self.served is not None:
            self.served.stop()
            self.served = None


def _reencoded(image: Image.Image, factor: float, quality: int) -> bytes:
    w, h = image.size
    small = image.resize((max(1, int(w * factor)), max(1, int(h * factor))))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=quality)
    return out.getvalue()


def add_demo_bank(store: Store, original: bytes) -> int:
    """The demo's known-abuse bank, holding only the hashes of `original`; entries added."""
    signals = hash_bytes(original)
    create_bank(
        store,
        DEMO_BANK,
        "known-abuse",
        description="demo stand-in: hashes of one benign photo",
        owner="demo",
        actor="demo",
    )
    records = [
        EntryRecord(
            name,
            value,
            source="demo",
            original_id="stand-in-1",
            classification_scheme="uk",
            classification_label="A",
        )
        for name in BANKED_SIGNALS
        if (value := signals.value(name))
    ]
    return add_entries(store, DEMO_BANK, records, actor="demo", source="demo").added


# --------------------------------------------------------------------------- over HTTP

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_CODE = re.compile(r'id="tracking-code">([A-Z0-9-]+)<')
_H1 = re.compile(r"<h1>(.*?)</h1>", re.S)


def report_through_form(base_url: str, urls: Sequence[str], description: str) -> tuple[str, str]:
    """File a report through the public form in French, as a browser does: the form's page
    (its one-time token and cookie), then the form sent. (tracking code, the answer's title)."""
    with httpx.Client(base_url=base_url, timeout=30) as browser:
        form = browser.get("/report", params={"lang": "fr"})
        token = _TOKEN.search(form.text)
        if form.status_code != 200 or token is None:
            raise HotlineDemoError(f"GET /report?lang=fr answered {form.status_code}")
        sent = browser.post(
            "/report",
            data={
                "csrf_token": token.group(1),
                "lang": "fr",
                "urls": "\n".join(urls),
                "description": description,
                "site_type": "image-host",
                "content_type": "images",
                "website": "",
            },
        )
    code, title = _CODE.search(sent.text), _H1.search(sent.text)
    if sent.status_code != 201 or code is None:
        raise HotlineDemoError(f"POST /report answered {sent.status_code}")
    return code.group(1), (title.group(1).strip() if title else "")


def analyst_client(
    store: Store, base_url: str, username: str, roles: Sequence[str] = ("analyst",)
) -> tuple[httpx.Client, int]:
    """A new user of `roles` (an analyst by default; through `childguard.accounts.users`)
    signed in over `/v1/session`: a client that sends the session cookie and the CSRF header,
    and the user's id."""
    password = secrets.token_urlsafe(18)
    user = create_user(store, username, password, actor="demo", roles=tuple(roles))
    client = httpx.Client(base_url=base_url, timeout=30)
    answer = client.post("/v1/session", json={"username": username, "password": password})
    if answer.status_code != 200:
        client.close()
        raise HotlineDemoError(f"{username} could not sign in: {answer.status_code}")
    client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
    return client, user.id


def _ok(answer: httpx.Response, what: str) -> dict[str, Any]:
    if answer.status_code != 200:
        raise HotlineDemoError(f"{what} answered {answer.status_code}: {answer.text[:300]}")
    body: dict[str, Any] = answer.json()
    return body


# --------------------------------------------------------------------------- the store


def report_id_of(store: Store, tracking_code: str) -> int:
    with store.session() as session:
        found = session.scalar(
            select(Report.id).where(Report.tracking_hash == tracking_hash(tracking_code))
        )
    if found is None:
        raise HotlineDemoError("the report the form accepted is not in the store")
    return int(found)


def wait_processed(store: Store, report_id: int, timeout: float = WAIT_SECONDS) -> dict[str, str]:
    """Wait until the service's job runner has processed every URL of the report; URL ->
    state."""
    deadline = time.monotonic() + timeout
    while True:
        urls = report_urls(store, report_id)
        if urls and all(u.state in SETTLED_STATES for u in urls):
            return {u.url: u.state for u in urls}
        if time.monotonic() > deadline:
            states = ", ".join(f"{u.url}: {u.state}" for u in urls)
            raise HotlineDemoError(f"report {report_id} was not processed in time ({states})")
        time.sleep(0.1)


def queue_order(store: Store) -> list[int]:
    """The items waiting for an analyst, in the queue's order."""
    with store.session() as session:
        return list(
            session.scalars(
                select(Item.id)
                .where(Item.state == "new", Item.duplicate_of.is_(None))
                .order_by(Item.priority, Item.first_seen, Item.id)
            ).all()
        )


def item_rows(store: Store) -> list[dict[str, Any]]:
    """Every item with its state, priority, the item it duplicates, its banks and places."""
    with store.session() as session:
        places = dict(
            session.execute(
                select(ItemPlace.item_id, func.count()).group_by(ItemPlace.item_id)
            ).all()
        )
        return [
            {
                "id": item.id,
                "state": item.state,
                "priority": item.priority,
                "duplicate_of": item.duplicate_of,
                "banks": sorted({m.get("bank_name", "?") for m in item.matches or []}),
                "places": int(places.get(item.id, 0)),
                "width": item.width,
                "height": item.height,
            }
            for item in session.scalars(select(Item).order_by(Item.id))
        ]


# --------------------------------------------------------------------------- the chapter


def hotline_settings(store_url: str, home: Path, **overrides: Any) -> Settings:
    """The demo service's settings: the demo's store, its home folder, private fetches on (the
    site is on 127.0.0.1) and a quick job poll."""
    values: dict[str, Any] = {
        "db_url": store_url,
        "data_dir": home,
        "index_dir": home / "index",
        "allow_private_fetch": True,
        "job_poll_seconds": 0.1,
        "log_level": "WARNING",
        **overrides,
    }
    return Settings(**values)


def run_hotline(
    store: Store, store_url: str, workdir: Path, photos: Sequence[Path], out: Console
) -> HotlineResult:
    """The hotline chapter on the demo's store (`store`, at `store_url`), its site under
    `workdir/sites/hotline`, with three of `photos` (benign)."""
    started = time.perf_counter()

    def say(text: str) -> None:
        out.print(text, highlight=False)

    result = HotlineResult()
    say("[bold]6. The hotline: a report through the French form, items, two analysts[/bold]")
    site = HotlineSite.build(workdir / "sites" / "hotline", photos[:3])
    added = add_demo_bank(store, site.original)
    say(
        f"   demo known-abuse bank {DEMO_BANK}: {added} hashes of photo-1.jpg "
        "(hashes only; a benign stand-in for a hotline's list)"
    )
    # A removal holds for a day before it is verified; in the demo, the second check does it.
    settings = hotline_settings(store_url, workdir / "home", hotline_verify_after_hours=0)
    site.start()
    try:
        with (
            Mailbox.running(free_port()) as mailbox,
            patched_environment(smtp_environment(mailbox.port)),
            running_service(settings) as base,
        ):
            say(f"   service started at {base}; the site is served at {site.url('/')}")
            _first_report(store, base, site, result, say)
            _review(store, base, result, say)
            _second_report(store, base, site, result, say)
            result.takedown = _takedown(store, base, site, mailbox, workdir, say)
    finally:
        site.stop()
    rows = item_rows(store)
    result.items = len(rows)
    result.pictures = sum(1 for r in rows if r["duplicate_of"] is None)
    result.near_folded = result.items - result.pictures
    result.exact_folded = sum(r["places"] for r in rows) - result.items
    result.inherited = sum(1 for r in rows if r["state"] == "inherited")
    result.inherited_share = inherited_share(store)
    result.elapsed_s = time.perf_counter() - started
    say(
        f"   [bold]hotline: {result.reports} reports, {result.items} items "
        f"({result.pictures} pictures), {result.duplicates_folded} duplicates folded "
        f"({result.exact_folded} exact, {result.near_folded} near), {result.inherited} "
        f"inherited an assessment ({100 * result.inherited_share:.0f}% of items), "
        f"{result.elapsed_s:.1f}s[/bold]"
    )
    return result


def _takedown(
    store: Store, base: str, site: HotlineSite, mailbox: Mailbox, workdir: Path, say: Any
) -> TakedownResult:
    """Chapter 7 with a supervisor and an analyst signed in; the host takes down every copy
    of the assessed picture."""
    supervisor, _ = analyst_client(
        store, base, f"supervisor-{secrets.token_hex(2)}", roles=("supervisor",)
    )
    analyst, _ = analyst_client(store, base, f"analyst-3-{secrets.token_hex(2)}")
    copies = [site.root / "i" / name for name in ASSESSED_COPIES]
    with contextlib.closing(supervisor), contextlib.closing(analyst):
        return run_takedown(
            base, supervisor, analyst, mailbox, take_down=copies, workdir=workdir, say=say
        )


def _show_items(store: Store, say: Any) -> None:
    for row in item_rows(store):
        near = f", near duplicate of item {row['duplicate_of']}" if row["duplicate_of"] else ""
        banks = f", matched {', '.join(row['banks'])}" if row["banks"] else ""
        say(
            f"     item {row['id']}: {row['width']}x{row['height']}, {row['state']}, priority "
            f"{row['priority']}, {row['places']} place(s){near}{banks}"
        )


def _first_report(
    store: Store, base: str, site: HotlineSite, result: HotlineResult, say: Any
) -> None:
    urls = [site.url("/gallery/"), site.url("/i/photo-2.jpg")]
    code, title = report_through_form(base, urls, "Des photos partagées sur une galerie.")
    result.reports += 1
    result.tracking_codes.append(code)
    say(f"   report 1 through POST /report (lang=fr): « {title} », tracking code {code}")
    report_id = report_id_of(store, code)
    states = wait_processed(store, report_id)
    result.url_states.update(states)
    for url, state in states.items():
        say(f"     {url}: received -> fetched -> traced -> {state}")
    _show_items(store, say)
    queue = queue_order(store)
    rows = {r["id"]: r for r in item_rows(store)}
    matched = [i for i in queue if DEMO_BANK in rows[i]["banks"]]
    if not matched:
        raise HotlineDemoError("no item of the first report matched the demo bank")
    result.matched_item = matched[0]
    result.first_in_queue = queue[0] if queue else None
    say(
        f"   queue: {', '.join(f'item {i}' for i in queue)}; item {result.matched_item} "
        "matched the known-abuse bank and comes first"
    )


def _review(store: Store, base: str, result: HotlineResult, say: Any) -> None:
    item_id = result.matched_item
    for n in (1, 2):
        client, user_id = analyst_client(store, base, f"analyst-{n}-{secrets.token_hex(2)}")
        with contextlib.closing(client):
            taken = _ok(client.post("/v1/hotline/queue/next", json={}), "the queue")
            got = (taken.get("item") or {}).get("id")
            if got != item_id:
                raise HotlineDemoError(f"analyst {n} was given item {got}, not {item_id}")
            if n == 1:
                _ok(
                    client.post(
                        f"/v1/hotline/items/{item_id}/reveal",
                        json={"reason": "check the stand-in", "seconds": 5},
                    ),
                    "the reveal",
                )
            voted = _ok(
                client.post(f"/v1/hotline/items/{item_id}/votes", json={"facts": STAND_IN_FACTS}),
                "the vote",
            )
        result.vote_statuses.append(str(voted["status"]))
        labels = ", ".join(
            f"{lb['scheme']}/{lb['profile']} {lb['label']}" for lb in voted["labels"]
        )
        reveal = " (revealed once, audited)" if n == 1 else ""
        say(
            f"   analyst {n} (user {user_id}) signs in, takes item {item_id}{reveal} and votes "
            f"{voted['outcome']}: {voted['status']}"
            + (f"; labels {labels}; {voted['banked']} hashes banked" if n == 2 else "")
        )
        result.final_outcome = str(voted["outcome"]) if voted["status"] == "final" else None
    if result.final_outcome is None:
        raise HotlineDemoError(f"item {item_id} is not final after two agreeing votes")


def _second_report(
    store: Store, base: str, site: HotlineSite, result: HotlineResult, say: Any
) -> None:
    result.queue_before_second = queue_order(store)
    before = {r["id"] for r in item_rows(store)}
    url = site.url("/i/photo-1-repost.jpg")
    code, _ = report_through_form(base, [url], "La même photo, ailleurs.")
    result.reports += 1
    result.tracking_codes.append(code)
    states = wait_processed(store, report_id_of(store, code))
    result.url_states.update(states)
    result.second_url_state = states[url]
    result.queue_after_second = queue_order(store)
    new = [r for r in item_rows(store) if r["id"] not in before]
    if len(new) != 1:
        raise HotlineDemoError(f"the second report made {len(new)} items, not one")
    result.second_item, result.second_item_state = new[0]["id"], new[0]["state"]
    say(
        f"   report 2 (lang=fr) of {url}, a re-encoded copy: item {result.second_item} is "
        f"{result.second_item_state} (near duplicate of item {new[0]['duplicate_of']}, "
        f"{result.final_outcome}); the URL is {result.second_url_state}; the queue "
        + (
            "is unchanged: no analyst sees it again"
            if result.queue_after_second == result.queue_before_second
            else f"changed: {result.queue_before_second} -> {result.queue_after_second}"
        )
    )
