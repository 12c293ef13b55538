"""End to end in headless Chromium, as a new analyst would: first login, add, find, export, edit, log out."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.csvio import HEADER
from tests.conftest import browser_login, make_user
from tests.factories import make_event

pytestmark = pytest.mark.browser

ONE_TIME = "temporary-start-word-77"
OWN_PASSWORD = "harbour-violet-cactus-41"
TITLE = "Belarus requests Tor-M2 systems from Russia"


def test_new_analyst_journey(page, live_server: str, engine: Engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        # Some other events, so "find it by filter" has something to leave out.
        for i in range(4):
            make_event(s, title=f"Unrelated statement {i}", kind="statement", date="2025-06")
        user = make_user(s, "analyst", "newcomer", password=ONE_TIME)
        user.must_change_password = True  # created by an admin with a one-time password
        s.commit()

    # 1. Log in with the one-time password; the app insists on a password of one's own first.
    browser_login(page, "newcomer", ONE_TIME)
    page.wait_for_url("**/account/password")
    page.fill("#current", ONE_TIME)
    page.fill("#new", OWN_PASSWORD)
    page.fill("#confirm", OWN_PASSWORD)
    page.click("form[action='/account/password'] button[type=submit]")
    page.wait_for_url("**/?password=changed")

    # 2. Add an event with two sources through the form.
    page.click("text=+ New event")
    page.wait_for_url("**/events/new")
    page.fill("#title", TITLE)
    page.select_option("#kind", "request")
    page.fill("#date", "2025")
    page.select_option("#date-month", "11")
    page.fill("#countries-0-code", "RUS")
    page.fill("#countries-1-code", "BLR")
    page.fill("#sources-0-publisher", "BelTA")
    page.fill("#sources-0-url", "https://www.belta.by/tor-m2")
    page.select_option("#sources-0-reliability", "C")
    page.select_option("#sources-0-credibility", "3")
    page.fill("#sources-0-quote", "Minsk asked for more Tor-M2 batteries")
    page.click("#add-source")
    page.wait_for_selector("#sources-1-publisher")
    page.fill("#sources-1-publisher", "Reuters")
    page.select_option("#sources-1-reliability", "B")
    page.select_option("#sources-1-credibility", "2")
    page.click("button.primary[name=save]")
    page.wait_for_url("**/events/*?saved=1")
    event_id = int(page.url.split("/events/")[1].split("?")[0])
    assert page.locator("h1").inner_text() == TITLE
    assert page.locator(".sources-list > li").count() == 2

    # 3. Find it on the timeline with a filter (text search plus the recipient).
    page.goto("/")
    page.fill("#q", "Tor-M2")
    page.click("#filters button.primary[type=submit]")
    page.wait_for_url(re.compile(r".*[?&]q=Tor-M2.*"))
    titles = [t.strip() for t in page.locator(".event-row .title").all_inner_texts()]
    assert titles == [TITLE]

    # 4. Export exactly this view and open the file.
    with page.expect_download() as info:
        page.get_by_role("link", name="Export this 1 event (CSV)").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    records = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    assert list(records[0].keys()) == list(HEADER)
    assert [(r["id"], r["title"], r["kind"]) for r in records] == [(str(event_id), TITLE, "request")]
    assert records[0]["source_publishers"] == "BelTA; Reuters"
    assert records[0]["source_grades"] == "C3; B2"
    assert (records[0]["suppliers"], records[0]["recipients"]) == ("RUS", "BLR")
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(path, dtype=str, keep_default_na=False)
    assert list(frame["title"]) == [TITLE] and list(frame["date"]) == ["2025-11"]

    # 5. Edit it, with a reason, and see the change in its history.
    page.goto(f"/events/{event_id}")
    page.click("text=Edit")
    page.wait_for_url(f"**/events/{event_id}/edit")
    page.select_option("#status", "confirmed")
    page.fill("#reason", "Reuters confirmed the request")
    page.click("button.primary[name=save]")
    page.wait_for_url(f"**/events/{event_id}?saved=1")
    history = page.locator("#history")
    assert history.locator(".history-item").count() == 2
    text = history.inner_text()
    assert "newcomer" in text and "Reuters confirmed the request" in text
    assert "confirmed" in history.locator(".history-item").nth(0).inner_text()

    # 6. Log out: the old session cookie is worthless afterwards, even replayed.
    old_cookies = page.context.cookies()
    page.click("text=Log out")
    page.wait_for_url("**/login")
    replay = page.context.browser.new_context(base_url=live_server)
    try:
        replay.add_cookies(old_cookies)
        again = replay.new_page()
        again.goto(f"/events/{event_id}/edit")
        assert "/login" in again.url
    finally:
        replay.close()
