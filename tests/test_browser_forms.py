"""In headless Chromium: add an event with two sources and a new actor, edit it, see the history."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.models import Actor
from app.services.events import event_input, load_event, update_event
from tests.conftest import browser_login


def shots(tmp_path: Path) -> Path:
    """Where screenshots go (SCREENSHOT_DIR to keep them for a look)."""
    folder = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.browser
def test_add_event_with_two_sources_and_new_actor_then_edit(
    page, live_user, engine: Engine, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    out = shots(tmp_path)
    page.set_viewport_size({"width": 1280, "height": 900})
    browser_login(page, live_user("analyst"))
    page.click("text=+ New event")
    page.wait_for_url("**/events/new")
    page.fill("#title", "Russia pledges Pantsir batteries to Venezuela")
    page.select_option("#kind", "offer")
    page.fill("#date", "2025")
    page.select_option("#date-month", "10")
    page.fill("#date-day", "14")
    page.fill("#countries-0-code", "RUS")
    page.fill("#countries-1-code", "VEN")
    page.fill("#actors-0-name", "Alexei Zhuravlyov")
    page.click("text=New actor? Add type, country and title")
    page.select_option("#actors-0-type", "person")
    page.fill("#actors-0-country", "RUS")
    page.fill("#actors-0-title", "Duma defence committee deputy")
    page.fill("#systems-0-designation", "Pantsir-S1")
    page.fill("#systems-0-quantity_note", "several batteries")
    page.fill("#sources-0-publisher", "Gazeta.ru")
    page.fill("#sources-0-url", "https://www.gazeta.ru/politics/pantsir.shtml")
    page.select_option("#sources-0-reliability", "C")
    page.select_option("#sources-0-credibility", "3")
    page.fill("#sources-0-quote", "Nothing prevents us from supplying them")
    # "Add source" brings a second row in place (HTMX), focused, without losing anything typed.
    page.click("#add-source")
    page.wait_for_selector("#sources-1-publisher")
    assert page.evaluate("document.activeElement.id") == "sources-1-publisher"
    assert page.input_value("#sources-0-publisher") == "Gazeta.ru"
    page.fill("#sources-1-publisher", "Reuters")
    page.fill("#sources-1-published", "2025-10-15")
    page.select_option("#sources-1-reliability", "B")
    page.select_option("#sources-1-credibility", "2")
    page.screenshot(path=str(out / "new.png"), full_page=True)
    page.click("button.primary[name=save]")
    page.wait_for_url("**/events/*?saved=1")
    page.screenshot(path=str(out / "saved.png"), full_page=True)

    assert page.locator(".alert.ok").inner_text().startswith("Saved.")
    assert page.locator("h1").inner_text() == "Russia pledges Pantsir batteries to Venezuela"
    sources = page.locator(".sources-list > li")
    assert sources.count() == 2
    assert "Gazeta.ru" in sources.nth(0).inner_text() and "C3" in sources.nth(0).inner_text()
    assert "Reuters" in sources.nth(1).inner_text() and "B2" in sources.nth(1).inner_text()
    actors = page.locator("section.card", has=page.locator("h2", has_text="Actors"))
    assert actors.get_by_role("link", name="Alexei Zhuravlyov").is_visible()
    assert "Duma defence committee deputy" in actors.inner_text()
    with Session(engine) as s:
        actor = s.query(Actor).filter_by(name="Alexei Zhuravlyov").one()
        assert (actor.country_code, actor.type) == ("RUS", "person")

    event_id = int(page.url.split("/events/")[1].split("?")[0])
    page.click("text=Edit")
    page.wait_for_url(f"**/events/{event_id}/edit")
    assert page.input_value("#sources-1-publisher") == "Reuters"
    page.select_option("#status", "confirmed")
    page.fill("#sources-1-quote", "Moscow confirmed the shipment")
    page.fill("#reason", "Reuters confirms")
    page.screenshot(path=str(out / "edit.png"), full_page=True)
    page.click("button.primary[name=save]")
    page.wait_for_url(f"**/events/{event_id}?saved=1")
    assert "Moscow confirmed the shipment" in page.locator("section:has(#sources-head)").inner_text()
    history = page.locator("#history")
    assert history.locator(".history-item").count() == 2
    text = history.inner_text()
    assert "Edited" in text and "Created" in text and "Reuters confirms" in text
    assert "confirmed" in history.locator(".history-item").nth(0).locator("td.after").first.inner_text()
    page.locator("#history").screenshot(path=str(out / "history.png"))


@pytest.mark.browser
def test_remove_row_conflict_and_delete_pages(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = shots(tmp_path)
    page.set_viewport_size({"width": 1280, "height": 900})
    from app.schemas import EventInput
    from app.services.events import create_event
    from tests.factories import event_data

    with Session(engine) as s:
        event_id = create_event(s, EventInput.model_validate(event_data()), None).id
        s.commit()
    browser_login(page, live_user("analyst"))

    # Errors: the summary comes first and takes the focus; every value stays.
    page.goto("/events/new")
    page.fill("#title", "")
    page.fill("#date", "2999")
    page.fill("#sources-0-publisher", "TASS")
    page.fill("#sources-0-url", "tass.com/no-scheme")
    page.click("button.primary[name=save]")
    page.wait_for_selector("#error-summary")
    assert page.evaluate("document.activeElement.id") == "error-summary"
    assert page.input_value("#sources-0-url") == "tass.com/no-scheme"
    page.screenshot(path=str(out / "errors.png"), full_page=True)

    # "Remove" takes a row away in place.
    page.goto(f"/events/{event_id}/edit")
    page.click("#add-system")
    page.wait_for_selector("#systems-1-designation")
    page.click("#systems-row-1 [data-remove-row]")
    assert page.locator("#systems-row-1").count() == 0

    # Someone else saves meanwhile: this save shows the conflict page.
    with Session(engine) as s:
        event = load_event(s, event_id)
        data = event_input(event).model_copy(update={"title": "A colleague's newer title"})
        update_event(s, event_id, data, None, event.version, "colleague")
        s.commit()
    page.fill("#title", "My own title")
    page.click("button.primary[name=save]")
    page.wait_for_selector("text=Someone saved this event while you were editing")
    page.screenshot(path=str(out / "conflict.png"), full_page=True)
    page.click("text=Re-apply my changes")
    page.wait_for_url(f"**/events/{event_id}?saved=1")
    assert page.locator("h1").inner_text() == "My own title"

    page.click("text=Delete…")
    page.wait_for_url(f"**/events/{event_id}/delete")
    page.fill("#reason", "entered twice")
    page.screenshot(path=str(out / "delete.png"), full_page=True)
    page.click("button.danger")
    page.wait_for_url(f"**/events/{event_id}/delete?done=1")
    assert "was deleted" in page.locator(".alert.ok").inner_text()
    page.screenshot(path=str(out / "deleted.png"), full_page=True)
    page.goto("/")
    assert page.get_by_text("My own title").count() == 0


@pytest.mark.browser
def test_autocomplete_admin_restore_and_merge_pages(page, live_user, engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from app.schemas import EventInput
    from app.services.events import create_event, delete_event
    from tests.factories import event_data

    out = shots(tmp_path)
    page.set_viewport_size({"width": 1280, "height": 900})
    with Session(engine) as s:
        event_id = create_event(s, EventInput.model_validate(event_data()), None).id
        other = event_data(
            title="Rybakov again", date="2024", actors=[{"name": "Sergey Rybakov", "role": "speaker"}]
        )
        create_event(s, EventInput.model_validate(other), None)
        delete_event(s, event_id, None, "test")
        s.commit()
    browser_login(page, live_user("admin"))

    # Typing in an actor field fills its suggestions (HTMX, by name or alias).
    page.goto("/events/new")
    page.fill("#actors-0-name", "ryab")
    page.wait_for_selector("#actor-options option", state="attached")
    assert page.locator("#actor-options option").first.get_attribute("value") == "Sergei Ryabkov"
    page.fill("#countries-0-code", "venez")
    page.wait_for_selector("#country-options option", state="attached")
    assert page.locator("#country-options option").first.get_attribute("value") == "VEN"

    page.goto("/admin/deleted")
    page.screenshot(path=str(out / "admin-deleted.png"), full_page=True)
    page.click(f"form[action='/admin/events/{event_id}/restore'] button")
    page.wait_for_url(f"**/events/{event_id}?restored=1")
    assert "Restored" in page.locator(".alert.ok").inner_text()

    page.goto("/admin/merge/actors?keep=Sergei%20Ryabkov")
    page.fill("#drop", "Sergey Rybakov")
    page.click("text=Preview the merge")
    page.wait_for_selector("text=Check before merging")
    page.screenshot(path=str(out / "merge-preview.png"), full_page=True)
    page.click("button[name=confirm]")
    page.wait_for_url("**/actors/*/edit?merged=1")
    assert "Sergey Rybakov" in page.input_value("#aliases")
    page.screenshot(path=str(out / "actor-edit.png"), full_page=True)
