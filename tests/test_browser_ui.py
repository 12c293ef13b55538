"""Charts on a true time axis, layout at 1280 and 390 px, the form's grades, axe-core (headless Chromium)."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.demo import seed_demo
from app.models import Event
from tests.conftest import browser_login
from tests.factories import make_event

AXE = Path(__file__).parent / "vendor" / "axe-core-4.14.1" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Screenshots go to SCREENSHOT_DIR when set (to look at them), else nowhere.
SHOTS = os.environ.get("SCREENSHOT_DIR")

# The geometry of a chart's x axis and of its first dataset's bars or points, in canvas pixels.
GEOMETRY = """(sel) => {
  const chart = Chart.getChart(document.querySelector(sel));
  const x = chart.scales.x;
  return { type: x.type, rotation: x.labelRotation, widest: x._labelSizes.widest.width,
           ticks: x.ticks.map(t => x.getPixelForValue(t.value)), labels: x.ticks.map(t => t.label),
           points: chart.getDatasetMeta(0).data.map(e => e.x) };
}"""


@pytest.fixture
def demo(engine: Engine, live_server: str) -> int:
    """The demo data plus an older RUS -> VEN offer (Feb 2024); returns that event's id."""
    with Session(engine) as s:
        seed_demo(s)
        event = make_event(s, date="2024-02", title="Russia offers radar parts to Venezuela")
        s.commit()
        return event.id


def _context(browser, live_server: str, viewport: dict[str, int]):  # type: ignore[no-untyped-def]
    return browser.new_context(base_url=live_server, viewport=viewport)


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True, caret="initial")


def _ms(iso: str, middle: bool) -> float:
    """Epoch ms of an ISO month or year bucket: its start, or its middle."""
    parts = [int(p) for p in iso.split("-")]
    start = datetime(parts[0], parts[1] if len(parts) > 1 else 1, 1, tzinfo=UTC)
    if len(parts) > 1:
        end = datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)
    else:
        end = datetime(start.year + 1, 1, 1, tzinfo=UTC)
    stamp = (start.timestamp() + end.timestamp()) / 2 if middle else start.timestamp()
    return stamp * 1000


def _assert_true_time(geometry: dict[str, Any], times: list[float], width: int) -> None:
    """Points sit in proportion to their dates; tick labels are level and do not overlap."""
    assert geometry["type"] in ("linear", "time"), geometry["type"]
    points = geometry["points"]
    assert len(points) == len(times) >= 3
    px_per_ms = (points[-1] - points[0]) / (times[-1] - times[0])
    for p, t in zip(points, times, strict=True):
        assert abs(p - (points[0] + (t - times[0]) * px_per_ms)) < 1.0, (points, times)
    ticks = geometry["ticks"]
    assert len(ticks) >= 2 and all(geometry["labels"]), geometry
    assert geometry["rotation"] == 0
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert min(gaps) > geometry["widest"] + 4, (width, geometry)


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1280", "390"])
def test_charts_put_dates_on_a_true_time_axis(browser, live_server, live_user, demo, viewport) -> None:  # type: ignore[no-untyped-def]
    context = _context(browser, live_server, viewport)
    page = context.new_page()
    try:
        browser_login(page, live_user("viewer"))
        expect(page.locator("canvas.timeline-chart")).to_be_visible()
        data = page.evaluate("() => JSON.parse(document.getElementById('chart-data').textContent)")
        assert data["buckets"][0] == "2024-02" and data["buckets"][-1] == "2025-11"
        times = [_ms(b, middle=True) for b in data["buckets"]]
        # The first dataset (statement) has zero-height bars in most months; its bars still mark the months.
        _assert_true_time(page.evaluate(GEOMETRY, "canvas.timeline-chart"), times, viewport["width"])

        page.goto("/dyads?supplier=RUS&recipient=VEN")
        expect(page.locator("canvas.ladder-chart")).to_be_visible()
        data = page.evaluate("() => JSON.parse(document.getElementById('ladder-data').textContent)")
        # 2018 (known only to the year), Feb 2024, Oct and Nov 2025: far from evenly spaced in time.
        assert data["months"] == ["2018", "2024-02", "2025-10", "2025-11"]
        times = [_ms(m, middle=False) for m in data["months"]]
        _assert_true_time(page.evaluate(GEOMETRY, "canvas.ladder-chart"), times, viewport["width"])
    finally:
        context.close()


def _axe(page) -> list[str]:  # type: ignore[no-untyped-def]
    """WCAG 2.1 A/AA violations axe-core finds on the page, one line each (rule: first nodes)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's CSP (no inline scripts) does not block.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(r => r.violations.map(v => v.id + ': '"
        " + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')))",
        WCAG_AA,
    )
    return list(result)


@pytest.mark.browser
def test_main_pages_have_no_wcag_aa_violations(browser, live_server, live_user, engine, demo) -> None:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        event_id = s.scalars(select(Event.id).where(Event.title.like("Duma defence official%"))).one()
        gone = make_event(s, title="A deleted offer")
        gone.deleted_at = datetime.now(UTC)
        s.commit()
    context = _context(browser, live_server, DESKTOP)
    page = context.new_page()
    found: dict[str, list[str]] = {}
    try:
        page.goto("/login")
        found["/login"] = _axe(page)
        browser_login(page, live_user("admin"))
        for path in (
            "/",
            f"/events/{event_id}",
            "/events/new",
            f"/events/{event_id}/edit",
            "/dyads",
            "/dyads?supplier=RUS&recipient=VEN",
            "/actors",
            "/systems",
            "/countries",
            "/import",
            "/account",
            "/admin/users",
            "/admin/deleted",
        ):
            page.goto(path)
            page.wait_for_load_state("networkidle")
            found[path] = _axe(page)
    finally:
        context.close()
    bad = [f"{path} {line}" for path, lines in found.items() for line in lines]
    assert not bad, "\n".join(bad)


def _box(page, selector: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return dict(page.evaluate(f"() => document.querySelector({selector!r}).getBoundingClientRect().toJSON()"))


@pytest.mark.browser
def test_filter_panel_groups_fit_inside_the_panel(browser, live_server, live_user, demo) -> None:  # type: ignore[no-untyped-def]
    context = _context(browser, live_server, DESKTOP)
    page = context.new_page()
    try:
        browser_login(page, live_user("viewer"))
        # Each group of the panel (Kind, Status, ..., Actors and systems) ends inside the form's box.
        overflowing = page.evaluate(
            """() => { const right = document.getElementById('filters').getBoundingClientRect().right;
              return Array.from(document.querySelectorAll('#filters fieldset'))
                .filter(f => f.getBoundingClientRect().right > right + 0.5)
                .map(f => f.querySelector('legend').textContent); }"""
        )
        assert overflowing == []
        # Nothing in the panel is cut off at its right edge (it would scroll sideways instead).
        assert page.evaluate(
            "() => { const p = document.querySelector('aside.panel'); "
            "return p.scrollWidth <= p.clientWidth; }"
        )
        _shot(page, "timeline-1280")
    finally:
        context.close()


@pytest.mark.browser
def test_phone_menu_shows_every_section_and_dyads_heading_has_no_gap(
    browser, live_server, live_user, demo
) -> None:  # type: ignore[no-untyped-def]
    context = _context(browser, live_server, PHONE)
    page = context.new_page()
    try:
        browser_login(page, live_user("admin"))
        links = page.locator("nav.mainnav a")
        assert links.count() >= 7
        for i in range(links.count()):
            box = links.nth(i).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], links.nth(
                i
            ).inner_text()
        _shot(page, "timeline-390")
        page.goto("/dyads")
        head, intro = _box(page, ".page-head h1"), _box(page, ".page-head p.muted")
        layout = _box(page, ".layout-with-panel")
        assert intro["top"] - head["bottom"] <= 16, (head, intro)
        assert layout["top"] - intro["bottom"] <= 24, (intro, layout)
        _shot(page, "dyads-390")
    finally:
        context.close()


@pytest.mark.browser
def test_event_page_fits_a_phone(browser, live_server, live_user, engine, demo) -> None:  # type: ignore[no-untyped-def]
    """A long quantity note in the systems table stays inside the page at 390 px (it scrolls in its card)."""
    with Session(engine) as s:
        event_id = s.scalar(select(Event.id).where(Event.title.like("Duma defence official%")))
    context = _context(browser, live_server, PHONE)
    page = context.new_page()
    try:
        browser_login(page, live_user("viewer"))
        page.goto(f"/events/{event_id}")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        _shot(page, "event-390")
    finally:
        context.close()


@pytest.mark.browser
def test_ladder_steps_fit_a_phone(browser, live_server, live_user, demo) -> None:  # type: ignore[no-untyped-def]
    """At 390 px each ladder step shows its stage, date, event and status without sideways scrolling."""
    context = _context(browser, live_server, PHONE)
    page = context.new_page()
    try:
        browser_login(page, live_user("viewer"))
        page.goto("/dyads?supplier=RUS&recipient=VEN")
        wrap = page.locator("table.ladder-steps").locator("xpath=..")
        assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth")
        statuses = page.locator("table.ladder-steps .badge.status")
        assert statuses.count() >= 2
        for i in range(statuses.count()):
            box = statuses.nth(i).bounding_box()
            assert box and box["x"] + box["width"] <= PHONE["width"], statuses.nth(i).inner_text()
        _shot(page, "ladder-390")
    finally:
        context.close()


@pytest.mark.browser
def test_a_message_leaves_the_field_once_corrected(browser, live_server, live_user, demo) -> None:  # type: ignore[no-untyped-def]
    context = _context(browser, live_server, DESKTOP)
    page = context.new_page()
    try:
        browser_login(page, live_user("analyst"))
        page.goto("/events/new")
        page.fill("#date", "2999")
        page.fill("#sources-0-publisher", "TASS")
        page.click("button.primary[name=save]")
        page.wait_for_selector("#error-summary")
        for field in ("title", "date", "sources-0-reliability"):
            expect(page.locator(f"#{field}-error")).to_be_visible()
        # The grade asks for a choice; F (and 6) are there to be chosen.
        assert "Choose how reliable the source is" in page.inner_text("#sources-0-reliability-error")
        page.fill("#title", "Russia offers radar parts")
        expect(page.locator("#title-error")).to_have_count(0)
        assert page.get_attribute("#title", "aria-invalid") == "false"
        assert "title-error" not in (page.get_attribute("#title", "aria-describedby") or "")
        page.select_option("#sources-0-reliability", "F")
        expect(page.locator("#sources-0-reliability-error")).to_have_count(0)
        page.fill("#date", "2025")
        expect(page.locator("#date-error")).to_have_count(0)
        # Fields not touched keep their message.
        expect(page.locator("#sources-0-credibility-error")).to_be_visible()
        _shot(page, "form-errors-1280")

        # The timeline panel: a refused date stops being marked as soon as it is edited.
        page.goto("/?from=2025-13")
        assert page.get_attribute("#f-from", "aria-invalid") == "true"
        page.fill("#f-from", "2025-10")
        assert page.get_attribute("#f-from", "aria-invalid") == "false"
    finally:
        context.close()


@pytest.mark.browser
def test_new_source_grades_start_unchosen_and_f6_can_be_chosen(page, live_user, demo) -> None:  # type: ignore[no-untyped-def]
    browser_login(page, live_user("analyst"))
    page.goto("/events/new")
    assert page.input_value("#sources-0-reliability") == ""
    assert page.input_value("#sources-0-credibility") == ""
    page.click("#add-source")
    page.wait_for_selector("#sources-1-reliability")
    assert page.input_value("#sources-1-reliability") == ""
    page.fill("#title", "Unjudged rumour of radar parts")
    page.select_option("#kind", "exercise")
    page.fill("#date", "2019")
    page.fill("#countries-0-code", "CHN")
    page.fill("#countries-1-code", "BLR")
    page.fill("#sources-0-publisher", "Telegram channel")
    page.select_option("#sources-0-reliability", "F")
    page.select_option("#sources-0-credibility", "6")
    page.click("button.primary[name=save]")
    page.wait_for_load_state()
    assert page.locator("#error-summary, #duplicates").count() == 0, page.inner_text("main")[:800]
    assert page.locator("h1").inner_text() == "Unjudged rumour of radar parts"
    assert page.locator(".grade", has_text="F6").count() >= 1
