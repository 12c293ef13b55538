"""In headless Chromium: link a denial to a claim from the event page (finding it by title) and see the link
on both pages; mark a due claim "reviewed, still unconfirmed" on /review."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.domain import clock
from tests.conftest import browser_login, make_user
from tests.factories import make_event

pytestmark = pytest.mark.browser


def test_link_a_denial_and_review_a_claim(page, live_server: str, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        with mock.patch.object(clock, "utcnow", return_value=clock.utcnow() - timedelta(days=45)):
            claim = make_event(
                s, title="5,000 Igla-S deployed in Venezuela", kind="deployment", status="claimed"
            )
            stale = make_event(s, title="Su-30 squadron to arrive", kind="transfer", status="reported")
        denial = make_event(s, title="Kremlin denies the Igla-S deployment", kind="denial", status="reported")
        make_user(s, "analyst", "watcher")
        s.commit()
        claim_id, stale_id, denial_id = claim.id, stale.id, denial.id

    browser_login(page, "watcher")
    # The top bar counts what is due.
    page.wait_for_selector(".due-count")
    assert page.inner_text(".due-count") == "2"

    # Link the denial to the claim, found by words of its title.
    page.goto(f"{live_server}/events/{denial_id}")
    page.select_option("#link-type", "denies")
    page.fill("#link-target", "")
    page.type("#link-target", "Igla deployed")
    page.wait_for_selector(f"#dl-link-target option[value^='#{claim_id} ']", state="attached")
    option = page.get_attribute(f"#dl-link-target option[value^='#{claim_id} ']", "value")
    assert option and "5,000 Igla-S deployed" in option
    page.fill("#link-target", option)
    page.check("input[name=set_status]")
    page.click("#link-form button[type=submit]")
    page.wait_for_url(f"**/events/{denial_id}?linked=1#links")
    assert "denies" in page.inner_text("#links") and "5,000 Igla-S deployed" in page.inner_text("#links")
    page.goto(f"{live_server}/events/{claim_id}")
    links = page.inner_text("#links")
    assert "denied by" in links and "Kremlin denies" in links
    assert page.inner_text(".event-head .status") == "denied"  # the box set the claim's status
    assert "Linked" in page.inner_text("#history")

    # A bad link: the message beside the field, the input kept.
    page.fill("#link-target", f"#{claim_id}")
    page.click("#link-form button[type=submit]")
    assert "cannot be linked to itself" in page.inner_text("#link-error")
    assert page.input_value("#link-target") == f"#{claim_id}"

    # The review queue: the denied claim left it; the other one is marked reviewed in place.
    page.goto(f"{live_server}/review")
    assert page.locator(".review-item").count() == 1
    page.fill(f"#note-{stale_id}", "No independent report yet; TASS only")
    page.click(f"#review-action-{stale_id} button[type=submit]")
    page.wait_for_selector(f"#review-action-{stale_id} .alert.ok")
    page.goto(f"{live_server}/review")
    assert page.locator(".review-item").count() == 0 and "Nothing due for review" in page.inner_text("main")
    page.goto(f"{live_server}/events/{stale_id}")
    history = page.inner_text("#history")
    assert "Reviewed, still unconfirmed" in history and "TASS only" in history
