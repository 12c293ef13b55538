"""Watch in headless Chromium: save a view, follow its feed without a session, add a note, link a denial."""

from __future__ import annotations

import re

import feedparser
import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.conftest import browser_login
from tests.factories import make_event

pytestmark = pytest.mark.browser

CLAIM = "Maduro claims 5,000 Igla-S deployed"


def test_save_view_follow_feed_add_note(page, browser, live_server: str, live_user, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        claim = make_event(s, title=CLAIM, kind="deployment", status="claimed")
        make_event(s, title="China ships drones", countries=[{"code": "CHN", "role": "supplier"}])
        denial = make_event(
            s,
            title="Caracas denies the missile story",
            kind="denial",
            countries=[{"code": "VEN", "role": "target"}],
        )
        s.commit()
        claim_id, denial_id = claim.id, denial.id
    username = live_user("analyst")
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    browser_login(page, username)

    # 1. Filter the timeline, save it under a name, shared with the desk.
    page.goto("/?supplier=RUS")
    page.wait_for_load_state("networkidle")
    page.click(".save-view > summary")
    page.fill("#save-view-name", "Russian claims")
    page.check(".save-view input[name=shared]")
    page.click(".save-view button[type=submit]")
    page.wait_for_url("**/views?done=saved*")
    card = page.locator(".view-card", has_text="Russian claims")
    assert "1 event" in card.inner_text() and "shared" in card.inner_text()

    # 2. The Views menu in the top bar lists it with its count.
    page.click(".views-menu > summary")
    item = page.locator(".views-list li", has_text="Russian claims")
    item.wait_for()
    assert item.locator(".view-count").inner_text() == "1"

    # 3. Make its feed address and open it in a fresh context that never logged in.
    item.locator("a.feed-link").click()
    page.wait_for_url("**/feeds/new?view=*")
    page.click("button:has-text('Make the feed address')")
    feed_url = page.input_value("#feed-url")
    assert re.search(r"/feeds/sbf_[\w-]{43}/views/\d+\.atom$", feed_url)
    reader = browser.new_context()
    try:
        answer = reader.request.get(feed_url)
        assert answer.status == 200 and answer.headers["content-type"].startswith("application/atom+xml")
        feed = feedparser.parse(answer.body())
        assert feed.bozo == 0 and [e.title for e in feed.entries] == [CLAIM]
        # The same token opens no page: the reader is sent to log in.
        home = reader.new_page()
        home.goto(live_server + "/")
        assert "/login" in home.url
        assert reader.request.get(feed_url.replace("/feeds/sbf_", "/feeds/sbf_x")).status == 404
    finally:
        reader.close()

    # 4. A note on the claim: Markdown shown, active content shown as text and never run.
    page.goto(f"/events/{claim_id}")
    page.fill("#note-new", "**Unconfirmed** by imagery. <script>alert('x')</script> [x](javascript:alert(1))")
    page.click(".note-form button[type=submit]")
    page.wait_for_url(f"**/events/{claim_id}#note-*")
    note = page.locator(".note").first
    assert note.locator(".note-body strong").inner_text() == "Unconfirmed"
    assert "<script>alert('x')</script>" in note.locator(".note-body").inner_text()
    assert note.locator(".note-body script").count() == 0 and note.locator(".note-body a").count() == 0
    assert dialogs == []
    assert "Notes (1)" in page.locator("#notes-title").inner_text()

    # 5. Link the denial to the claim, found by words of its title: both pages show the link.
    page.goto(f"/events/{denial_id}")
    page.select_option("#link-type", "denies")
    page.type("#link-target", "Igla deployed")
    option_css = f"#dl-link-target option[value^='#{claim_id} ']"
    page.wait_for_selector(option_css, state="attached")
    page.fill("#link-target", page.get_attribute(option_css, "value") or "")
    page.click("#link-form button[type=submit]")
    page.wait_for_url(f"**/events/{denial_id}?linked=1#links")
    assert "denies" in page.inner_text("#links") and CLAIM in page.inner_text("#links")
    page.goto(f"/events/{claim_id}")
    assert "denied by" in page.inner_text("#links") and "Caracas denies" in page.inner_text("#links")
