"""The analyst's review pages in real headless Chromium: the queue worked with the keyboard
only by two analysts until both items are final, previews blurred until a reveal (each reveal
in the audit log), and a locked item refused to a second analyst."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from childguard.hotline.review import exposure_today, record_exposure
from childguard.store.audit_log import list_events
from childguard.store.hotline_models import Assessment, Item
from hotline.review_items import make_item

from .conftest import ReviewServer


def high_frequency_energy(png: bytes) -> float:
    """The mean squared difference of neighbouring pixels (grey), at 256 pixels wide."""
    grey = Image.open(io.BytesIO(png)).convert("L")
    grey = grey.resize((256, max(1, round(256 * grey.height / grey.width))))
    pixels = np.asarray(grey, dtype=np.float64)
    return float(np.mean(np.diff(pixels, axis=1) ** 2) + np.mean(np.diff(pixels, axis=0) ** 2))


@pytest.fixture
def signed_in(browser: Any, review_server: ReviewServer) -> Iterator[Any]:
    """A function that opens a new browser context signed in as a new analyst, through the
    sign-in page the queue sends an unsigned browser to; it gives (user id, page)."""
    contexts: list[Any] = []
    # Script errors and refusals (CSP) the pages logged; the statuses are asserted apart.
    problems: list[str] = []

    def sign_in() -> tuple[int, Any]:
        user_id, username, password = review_server.analyst()
        context = browser.new_context(base_url=review_server.url)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.goto("/hotline/queue")
        assert "/login?next=/hotline/queue" in page.url
        # The username field takes the focus (autofocus) once the page has settled; typing
        # before that would go nowhere.
        page.wait_for_function("document.activeElement && document.activeElement.id === 'username'")
        page.keyboard.type(username)
        page.keyboard.press("Tab")
        page.keyboard.type(password)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        return user_id, page

    yield sign_in
    for context in contexts:
        context.close()
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []


def _item_of(page: Any) -> int:
    page.wait_for_selector("#review")
    return int(page.get_attribute("#review", "data-item"))


def _vote_adult_none(page: Any) -> None:
    """Age band adult (4), severity none (n), see the derived labels, submit (Enter)."""
    page.keyboard.press("4")
    page.keyboard.press("n")
    page.wait_for_selector("#derived-labels tr")
    assert "not-illegal" in page.inner_text("#derived-outcome")
    with page.expect_navigation():
        page.keyboard.press("Enter")


def test_the_queue_worked_by_keyboard_previews_blurred_until_revealed(
    review_server: ReviewServer, signed_in: Any
) -> None:
    store = review_server.live.store
    first_id, first = signed_in()
    first_item = _item_of(first)
    assert first_item in review_server.items
    assert "Keyboard shortcuts" in first.inner_text("#shortcuts")

    # The preview is blurred and greyscale; the clear one is refused before a reveal.
    blurred = first.request.get(f"/hotline/items/{first_item}/preview.png")
    assert blurred.status == 200 and blurred.headers["content-type"] == "image/png"
    refused = first.request.get(f"/hotline/items/{first_item}/preview.png?clear=1")
    assert refused.status == 403
    shown = Image.open(io.BytesIO(blurred.body())).convert("RGB")
    channels = np.asarray(shown, dtype=np.int16)
    assert np.abs(channels[..., 0] - channels[..., 1]).max() <= 1  # greyscale

    # A second analyst gets the other item, and cannot open the first one.
    second_id, second = signed_in()
    second_item = _item_of(second)
    assert second_item != first_item and second_item in review_server.items
    second.goto(f"/hotline/items/{first_item}")
    assert "is not locked to you" in second.inner_text("#message")
    answer = second.request.get(f"/hotline/items/{first_item}")
    assert answer.status == 403
    assert second.request.get(f"/hotline/items/{first_item}/preview.png").status == 403
    second.goto("/hotline/queue")
    assert _item_of(second) == second_item

    # Reveal with the keyboard: r, a reason, Enter; then the clear preview is served.
    first.keyboard.press("r")
    first.keyboard.type("check the context")
    with first.expect_navigation():  # to the item again, its images loaded
        first.keyboard.press("Enter")
    assert first.is_visible("#revealed-note")
    clear = first.request.get(f"/hotline/items/{first_item}/preview.png?clear=1")
    assert clear.status == 200
    original = Image.open(io.BytesIO(review_server.items[first_item])).convert("RGB")
    clear_picture = Image.open(io.BytesIO(clear.body())).convert("RGB")
    assert clear_picture.size == original.size
    assert high_frequency_energy(blurred.body()) < 0.05 * high_frequency_energy(clear.body())
    reveals = list_events(store, action="hotline.reveal", object_type="item")
    assert [(e.actor, e.object_id) for e in reveals] == [(f"user:{first_id}", str(first_item))]
    assert (reveals[0].details or {})["reason"] == "check the context"
    clear_views = list_events(store, action="hotline.preview_clear", object_id=first_item)
    assert [e.actor for e in clear_views] == [f"user:{first_id}"] * 2  # the page's, the test's

    # Both analysts vote on both items with the keyboard only; the next item loads itself.
    _vote_adult_none(first)
    assert "The queue is empty" in first.inner_text("main")  # the other item is locked
    _vote_adult_none(second)
    assert _item_of(second) == first_item
    assert "blurred-note" in second.content()  # a reveal is per analyst and per lock
    _vote_adult_none(second)
    assert "The queue is empty" in second.inner_text("main")
    with first.expect_navigation():
        first.keyboard.press("x")
    assert _item_of(first) == second_item
    _vote_adult_none(first)
    assert "The queue is empty" in first.inner_text("main")

    with store.session() as s:
        items = s.scalars(select(Item).where(Item.id.in_(list(review_server.items)))).all()
        assert {(i.state, i.outcome) for i in items} == {("assessed", "not-illegal")}
        finals = s.scalars(select(Assessment.item_id).where(Assessment.kind == "final")).all()
        assert sorted(finals) == sorted(review_server.items)
    assert exposure_today(store, first_id).seconds > 0  # the page reported its time on screen
    assert exposure_today(store, first_id).reveals == 1
    assert exposure_today(store, second_id).reveals == 0


def test_an_analyst_with_nothing_to_review_is_told_so(
    review_server: ReviewServer, signed_in: Any
) -> None:
    """Runs after the queue is worked: every item is assessed."""
    _, page = signed_in()
    assert "The queue is empty" in page.inner_text("main")
    page.goto("/hotline")
    assert "Take the next item" in page.inner_text("#review-home")


def test_skip_with_a_reason_and_release_by_keyboard(
    review_server: ReviewServer, signed_in: Any
) -> None:
    store = review_server.live.store
    skipped, kept = make_item(store, 901), make_item(store, 902)
    user_id, page = signed_in()
    assert _item_of(page) == skipped
    page.keyboard.press("k")
    page.keyboard.type("too blurred to judge")
    with page.expect_navigation():  # to the queue, and on to the next item
        page.keyboard.press("Enter")
    assert _item_of(page) == kept
    with page.expect_navigation():
        page.keyboard.press("u")
    assert page.url.endswith("/hotline")
    actor = f"user:{user_id}"
    skips = list_events(store, actor=actor, action="hotline.skip", object_id=skipped)
    assert [(e.details or {}).get("reason") for e in skips] == ["too blurred to judge"]
    assert len(list_events(store, actor=actor, action="hotline.release", object_id=kept)) == 1
    with store.session() as s:
        assert s.get(Item, kept).locked_by is None  # released to the queue
    with page.expect_navigation():
        page.keyboard.press("x")  # the next item: not the skipped one
    assert _item_of(page) == kept


def test_at_the_daily_cap_the_queue_refuses_with_a_break(
    review_server: ReviewServer, signed_in: Any
) -> None:
    user_id, page = signed_in()
    record_exposure(review_server.live.store, user_id, 3600)
    record_exposure(review_server.live.store, user_id, 3600)
    answer = page.goto("/hotline/queue")
    assert answer is not None and answer.status == 429
    assert "Time for a break" in page.inner_text("h1")


def test_a_key_or_a_user_without_the_role_gets_no_page(
    review_server: ReviewServer, browser: Any
) -> None:
    live = review_server.live
    with live.client("analyst") as api:
        assert api.get("/hotline/queue").status_code == 400  # a key is not a person
        assert api.get("/hotline/queue", headers={"Accept": "text/html"}).status_code == 400
    with live.client() as anonymous:
        refused = anonymous.get("/hotline/queue")
        assert refused.status_code == 401 and refused.json()["message"]
    _, username, password = review_server.analyst("reporter")
    context = browser.new_context(base_url=review_server.url)
    try:
        page = context.new_page()
        page.goto("/login?next=/hotline/queue")
        page.fill("#username", username)
        page.fill("#password", password)
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "analyst" in page.inner_text("#message")
        assert page.request.get("/hotline/queue").status == 403
    finally:
        context.close()
