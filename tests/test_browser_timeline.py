"""The timeline in headless Chromium: search, pick a country, back, reload; dyads and lists render."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.demo import seed_demo
from tests.conftest import browser_login

# Screenshots go to SCREENSHOT_DIR when set (to look at them), else to the test's temporary folder.
SHOTS = os.environ.get("SCREENSHOT_DIR")
TIMELINE_CHART = "Chart.getChart(document.querySelector('canvas.timeline-chart'))"
LADDER_CHART = "Chart.getChart(document.querySelector('canvas.ladder-chart'))"


def _shot(page, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx then copies (a CSP report).
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True, caret="initial")


def _until(page, script: str, timeout: float = 8.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a JS expression until it is truthy (wait_for_function needs eval, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({script})"):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {script}")
        page.wait_for_timeout(50)


def _rows(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.locator("#results .event-row").count())


@pytest.fixture
def demo(engine: Engine, live_server: str) -> None:
    with Session(engine) as s:
        seed_demo(s)
        s.commit()


@pytest.mark.browser
def test_search_pick_country_back_and_reload(page, live_user, demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    browser_login(page, live_user("viewer"))
    page.goto("/")
    assert _rows(page) == 11
    _until(
        page,
        "window.Chart && document.querySelector('canvas.timeline-chart') && " + TIMELINE_CHART,
    )
    # A marker survives HTMX swaps but not a full page load.
    page.evaluate("window.__stay = 'same page'")

    page.locator("#q").press_sequentially("Kalibr", delay=30)
    page.wait_for_url(re.compile(r"[?&]q=Kalibr"))
    expect(page.locator("#results .event-row")).to_have_count(1)
    assert "Oreshnik" in page.locator("#results .event-row").first.inner_text()
    # total, facets and chart follow the results (each loaded by its own request once the rows are shown)
    expect(page.locator("#results .total")).to_have_text(re.compile(r"^1 event "))
    expect(page.locator("#facet-kind label:has(input[value=statement]) .facet-count")).to_have_text("1")
    expect(page.locator("#facets-status")).to_have_text("Counts updated.")  # the loader was replaced
    _until(
        page,
        TIMELINE_CHART + " && " + TIMELINE_CHART + ".data.datasets.map(d => d.label).join() === 'statement'",
    )
    expect(page.locator("#results a:has-text('Export this 1 event (CSV)')")).to_be_visible()
    _shot(page, tmp_path, "timeline-search")

    # clear the search and pick a country from the facet list
    page.fill("#q", "")
    _until(page, "location.search === ''")
    expect(page.locator("#results .event-row")).to_have_count(11)
    page.locator("#facet-supplier label:has-text('United States')").click()
    page.wait_for_url(re.compile(r"supplier=USA"))
    expect(page.locator("#results .event-row")).to_have_count(2)
    assert page.locator("#fc-supplier-USA").is_checked()
    assert " ".join(page.locator("#results .chip").first.inner_text().split()).startswith(
        "supplier United States"
    )

    # add a recipient through the autocomplete box: a fragment is refused with a message and kept...
    box = page.locator("#add-recipient")
    box.press_sequentially("Venez", delay=30)
    page.wait_for_selector("#dl-recipient option[value=VEN]", state="attached")
    box.press("Enter")
    expect(page.locator("#filter-errors")).to_contain_text("unknown country “Venez”")
    # the panel is marked after HTMX settles the swap, a moment after the message shows: wait for it
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(box).to_have_value("Venez")
    # ...and picking the suggestion applies it
    box.fill("VEN")
    box.press("Enter")
    page.wait_for_url(re.compile(r"recipient=VEN"))
    expect(page.locator("#results .total")).to_contain_text("0 events")
    expect(page.locator("#fc-recipient-VEN")).to_be_checked()
    expect(box).to_have_value("")  # taken in: the box is ready for the next country
    assert page.evaluate("window.__stay") == "same page"

    # back: the previous view (supplier USA only), then reload shows the same
    page.go_back()
    _until(page, "!location.search.includes('recipient')")
    expect(page.locator("#results .event-row")).to_have_count(2)
    assert page.locator("#fc-supplier-USA").is_checked()
    assert (
        not page.locator("#fc-recipient-VEN").is_visible()
        or not page.locator("#fc-recipient-VEN").is_checked()
    )
    _until(page, TIMELINE_CHART + " !== undefined")
    url = page.url
    page.reload()
    assert page.url == url and _rows(page) == 2
    assert page.locator("#fc-supplier-USA").is_checked()

    # a chip removes its filter
    page.locator("#results .chip a").first.click()
    expect(page.locator("#results .event-row")).to_have_count(11)
    assert "supplier" not in page.url
    page.go_back()
    expect(page.locator("#results .event-row")).to_have_count(2)
    _shot(page, tmp_path, "timeline-country")
    assert errors == []


@pytest.mark.browser
def test_works_without_javascript(browser, live_server: str, live_user, demo) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server, java_script_enabled=False)
    page = context.new_page()
    try:
        browser_login(page, live_user("viewer"))
        page.goto("/")
        page.fill("#q", "Kalibr")
        page.locator("#filters button[type=submit]").click()
        page.wait_for_url(re.compile(r"q=Kalibr"))
        assert _rows(page) == 1
        page.locator("#fc-kind-statement").check()
        page.locator("#filters button[type=submit]").click()
        page.wait_for_url(re.compile(r"kind=statement"))
        assert _rows(page) == 1 and page.locator("#fc-kind-statement").is_checked()
        # counts, total and chart table without JavaScript: the page carries them (one request per view)
        assert "q=Kalibr" in page.url and "kind=statement" in page.url
        assert page.locator("#results .total").inner_text().startswith("1 event ")
        assert page.locator("#facet-kind label:has(input[value=statement]) .facet-count").inner_text() == "1"
        assert page.locator("#chart-card table").count() == 1
    finally:
        context.close()


@pytest.mark.browser
def test_dyads_and_lists_pages(page, live_user, demo, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    browser_login(page, live_user("analyst"))
    page.goto("/dyads")
    # The flow map: an arrow per pair of the demo (both ends on the map), keyboard-reachable links.
    page.wait_for_selector("svg.flow-svg path.flow")
    pairs = len(json.loads(page.locator("#flow-data").text_content() or "{}")["flows"])
    assert page.locator("a.flow-link path.flow").count() == pairs > 1
    assert page.locator("#flow-missing").is_hidden()
    _shot(page, tmp_path, "dyads")
    arrow = page.locator("a.flow-link[aria-label^='Russia → Venezuela: 9 events']")
    arrow.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"supplier=RUS.*recipient=VEN"))
    page.wait_for_selector(".ladder-steps")
    page.go_back()
    page.wait_for_selector("svg.flow-svg path.flow")
    # A pointer just beside the drawn line (5 map units off its middle, past its 4.1-unit half width) still
    # takes the arrow: its wider, invisible hit area.
    x, y = page.evaluate(
        """() => { const p = document.querySelector("path.flow[data-pair='RUS-VEN']");
        const half = p.getTotalLength() / 2;
        const a = p.getPointAtLength(half - 1), b = p.getPointAtLength(half + 1);
        const len = Math.hypot(b.x - a.x, b.y - a.y), m = p.getScreenCTM();
        const x = (a.x + b.x) / 2 - 5 * (b.y - a.y) / len, y = (a.y + b.y) / 2 + 5 * (b.x - a.x) / len;
        return [x * m.a + y * m.c + m.e, x * m.b + y * m.d + m.f]; }"""
    )
    assert page.evaluate(f"document.elementFromPoint({x}, {y}).getAttribute('class')") == "flow-hit"
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(r"supplier=RUS.*recipient=VEN"))
    page.go_back()
    page.wait_for_selector("svg.flow-svg path.flow")
    page.locator("table.matrix a[aria-label^='9 events Russia to Venezuela']").click()
    page.wait_for_url(re.compile(r"supplier=RUS.*recipient=VEN"))
    _until(page, "window.Chart && " + LADDER_CHART + " !== undefined")
    assert "6 · operational" in page.locator(".ladder-steps").inner_text()
    _shot(page, tmp_path, "dyad-ladder")
    page.go_back()
    page.wait_for_selector("table.matrix")
    for path in ("/actors", "/systems", "/countries"):
        page.goto(path)
        _shot(page, tmp_path, path.strip("/"))
    page.goto("/actors")
    page.locator("#list-q").press_sequentially("Песков", delay=30)
    _until(page, "document.querySelectorAll('#list-table tbody tr').length === 1")
    page.locator("#list-table a:has-text('Dmitry Peskov')").first.click()
    page.wait_for_url(re.compile(r"/\?actor=Dmitry"))
    assert _rows(page) == 1
    assert errors == []


@pytest.mark.browser
def test_keyboard_removal_of_a_chip_keeps_focus_and_the_total_is_announced(page, live_user, demo) -> None:  # type: ignore[no-untyped-def]
    browser_login(page, live_user("viewer"))
    page.goto("/?supplier=RUS&kind=statement&status=reported")
    chips = page.locator("#results .chip-remove")
    expect(chips).to_have_count(3)
    chips.nth(1).focus()  # the kind chip
    page.keyboard.press("Enter")
    _until(page, "document.querySelectorAll('#results .chip-remove').length === 2")
    # Focus moves to the chip now in its place (status), not to the top of the page.
    assert "status" in page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    _until(page, "document.getElementById('results-status').textContent.includes('match')")
    for left in (1, 0):
        # Let htmx finish settling the new rows (it wires the new chips' links then) before the next key.
        _until(page, "!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
        page.keyboard.press("Enter")
        _until(page, f"document.querySelectorAll('#results .chip-remove').length === {left}")
    assert page.evaluate("() => document.activeElement.classList.contains('results-head')")
    # The list itself is no live region (a screen reader would read every row); the status says the total.
    assert page.locator("#results[aria-live]").count() == 0
    _until(page, "document.getElementById('results-status').textContent.startsWith('11 events')")
    # The dyads page announces its total too (its results have no lazy total to read it from).
    page.goto("/dyads")
    page.locator("#fc-supplier-RUS").check()
    _until(page, "document.getElementById('results-status').textContent.includes('match this filter')")


@pytest.mark.browser
@pytest.mark.parametrize("path", ["/?country=VEN", "/dyads", "/actors", "/countries", "/admin/users"])
def test_pages_fit_a_phone_and_the_filters_fold_away(browser, live_server, live_user, demo, path) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(base_url=live_server, viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        browser_login(page, live_user("admin"))
        page.goto(path)
        # Wide tables scroll inside their box; the page itself never scrolls sideways.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        panel = page.locator("aside.panel")
        if panel.count():
            assert panel.evaluate("el => getComputedStyle(el).position") == "static"
            # Folded to the search box, so the results start near the top; one tap unfolds it.
            assert not page.locator("#panel-more").is_visible()
            page.get_by_role("button", name="More filters").click()
            expect(page.locator("#panel-more")).to_be_visible()
            assert page.get_by_role("button", name="Fewer filters").get_attribute("aria-expanded") == "true"
    finally:
        context.close()
