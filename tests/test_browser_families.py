"""System families in a browser: the tree on /systems at 1280 and 390 px, and a loop refused in the form."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.demo import seed_demo
from app.services.events import find_system
from tests.conftest import browser_login
from tests.factories import make_event

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Screenshots go to SCREENSHOT_DIR when set (to look at them), else nowhere.
SHOTS = os.environ.get("SCREENSHOT_DIR")


@pytest.fixture
def families(engine: Engine, live_server: str) -> None:
    """The demo data (Su-30MK2 under Su-30, Igla-S under Igla) and Shahed-136 <- Geran-2 <- Geran-2M."""
    with Session(engine) as s:
        seed_demo(s)
        for designation in ("Shahed-136", "Geran-2", "Geran-2", "Geran-2M"):
            make_event(
                s,
                title=f"{designation} drones delivered",
                countries=[{"code": "IRN", "role": "supplier"}, {"code": "RUS", "role": "recipient"}],
                systems=[{"designation": designation, "category": "loitering munition", "origin": "IRN"}],
            )
        shahed, geran, geranm = (find_system(s, d) for d in ("Shahed-136", "Geran-2", "Geran-2M"))
        assert shahed and geran and geranm
        geran.parent_id, geranm.parent_id = shahed.id, geran.id
        s.commit()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_systems_tree_and_a_refused_loop(browser, live_server: str, live_user, families, viewport) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server, viewport=viewport)
    page = context.new_page()
    name = "desktop" if viewport is DESKTOP else "phone"
    try:
        browser_login(page, live_user("analyst"))
        page.goto("/systems")
        rows = page.locator("#list-table tbody th[scope=row]")
        texts = [t.strip() for t in page.locator("#list-table tbody th[scope=row] a").all_inner_texts()]
        shahed = texts.index("Shahed-136")
        assert texts[shahed + 1 : shahed + 3] == ["Geran-2", "Geran-2M"], texts
        assert texts[texts.index("Su-30") + 1] == "Su-30MK2", texts
        expect(rows.nth(shahed + 2)).to_contain_text("variant of Geran-2")
        # Variants are indented, deeper ones more.
        lefts = [rows.nth(i).locator("a").bounding_box()["x"] for i in range(shahed, shahed + 3)]  # type: ignore[index]
        assert lefts[0] < lefts[1] < lefts[2], lefts
        # The page itself never scrolls sideways (a wide table scrolls in its own box).
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(SHOTS) / f"systems-{name}.png"), full_page=True)

        page.get_by_role("link", name="Edit Shahed-136").click()
        page.fill("#parent", "Geran-2M")
        page.get_by_role("button", name="Save").click()
        error = page.locator("#parent-error")
        expect(error).to_contain_text("loop")
        expect(page.locator("#parent")).to_have_attribute("aria-invalid", "true")
        if SHOTS:
            page.screenshot(path=str(Path(SHOTS) / f"loop-refused-{name}.png"), full_page=True)
    finally:
        context.close()
