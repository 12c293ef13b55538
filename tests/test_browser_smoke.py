"""A person logs in through the real form and sees the demo timeline (headless Chromium)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.demo import seed_demo
from tests.conftest import browser_login


@pytest.mark.browser
def test_login_and_see_timeline(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        seed_demo(s)
        s.commit()
    username = live_user("viewer")
    browser_login(page, username)
    assert page.url.endswith("/")
    assert page.locator(".event-row").count() == 11
    assert page.get_by_text("Duma defence official says nothing prevents").is_visible()
    page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)
    page.click("text=Duma defence official says nothing prevents supplying Oreshnik missiles to Venezuela")
    page.wait_for_url("**/events/*")
    assert page.locator("h1").inner_text().startswith("Duma defence official")
