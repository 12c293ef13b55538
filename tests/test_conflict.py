"""No lost updates: a save over a newer version shows the conflict page and overwrites nothing."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.models import AuditEntry, Event
from app.schemas import EventInput
from app.services.events import VersionConflict, create_event, event_input, load_event, update_event
from tests.conftest import truncate_all
from tests.factories import event_data, make_event


@pytest.fixture
def committed(engine: Engine) -> Iterator[Engine]:
    """Real commits on the test database (two sessions must see each other); emptied afterwards."""
    truncate_all(engine)
    yield engine
    truncate_all(engine)


def edited(data: EventInput, **changes: Any) -> EventInput:
    return EventInput.model_validate({**data.model_dump(mode="json"), **changes})


def test_two_concurrent_sessions_second_save_gets_the_conflict(committed: Engine) -> None:
    with Session(committed) as s:
        event_id = create_event(s, EventInput.model_validate(event_data()), None).id
        s.commit()
    # Both analysts open the edit form at version 1.
    with Session(committed) as s:
        loaded = load_event(s, event_id)
        form_a = edited(event_input(loaded), title="Russia ships Kalibr missiles to Venezuela")
        form_b = edited(event_input(loaded), status="confirmed", location="Caracas")
        version_seen = loaded.version

    a_has_lock = threading.Event()
    results: dict[str, Any] = {}

    def analyst_a() -> None:
        with Session(committed) as s:
            update_event(s, event_id, form_a, None, version_seen, "first")
            a_has_lock.set()
            time.sleep(0.5)  # B is now waiting on the row lock
            s.commit()
            results["a"] = "saved"

    def analyst_b() -> None:
        a_has_lock.wait(5)
        with Session(committed) as s:
            started = time.monotonic()
            try:
                update_event(s, event_id, form_b, None, version_seen, "second")
                s.commit()
                results["b"] = "saved"
            except VersionConflict as conflict:
                results["b"] = "conflict"
                results["b_waited"] = time.monotonic() - started
                results["b_saw"] = (conflict.current.version, conflict.current.title)
                s.rollback()

    threads = [threading.Thread(target=analyst_a), threading.Thread(target=analyst_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)

    assert results["a"] == "saved"
    assert results["b"] == "conflict"
    assert results["b_waited"] > 0.2  # B really waited for A's transaction (SELECT ... FOR UPDATE)
    assert results["b_saw"] == (2, "Russia ships Kalibr missiles to Venezuela")
    with Session(committed) as s:
        event = load_event(s, event_id)
        assert (event.version, event.title, event.status, event.location) == (
            2,
            "Russia ships Kalibr missiles to Venezuela",
            "reported",
            None,
        )
        # B re-applies on top of the newer version: both changes survive in the history.
        update_event(s, event_id, edited(event_input(event), status="confirmed", location="Caracas"), None, 2)
        s.commit()
        event = load_event(s, event_id)
        assert (event.version, event.title, event.status, event.location) == (
            3,
            "Russia ships Kalibr missiles to Venezuela",
            "confirmed",
            "Caracas",
        )
        actions = s.scalars(
            select(AuditEntry.action).where(AuditEntry.entity_id == event_id).order_by(AuditEntry.id)
        ).all()
        assert actions == ["create", "update", "update"]


def test_two_http_clients_against_the_live_server(committed: Engine, live_server: str, live_user) -> None:  # type: ignore[no-untyped-def]
    import httpx

    from tests.conftest import PASSWORD, csrf_from

    with Session(committed) as s:
        event_id = create_event(s, EventInput.model_validate(event_data()), None).id
        s.commit()

    def login() -> httpx.Client:
        c = httpx.Client(base_url=live_server, follow_redirects=False)
        username = live_user("analyst")
        token = csrf_from(c.get("/login").text)
        r = c.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 303, r.text[:500]
        return c

    one, two = login(), login()
    form_one, form_two = one.get(f"/events/{event_id}/edit").text, two.get(f"/events/{event_id}/edit").text

    def fields(html: str) -> dict[str, str]:
        out = dict(re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', html))
        for name, block in re.findall(r'<select id="[^"]*" name="([^"]+)"(.*?)</select>', html, re.S):
            chosen = re.search(r'<option value="([^"]*)" selected>', block)
            out[name] = chosen[1] if chosen else ""
        out.update(re.findall(r'<textarea id="[^"]*" name="([^"]+)"[^>]*>([^<]*)</textarea>', html))
        out.pop("save", None)
        return out

    data_one = {**fields(form_one), "title": "Edited by the first analyst"}
    data_two = {**fields(form_two), "location": "Caracas"}
    assert data_one["version"] == data_two["version"] == "1"
    assert one.post(f"/events/{event_id}/edit", data=data_one).status_code == 303
    clash = two.post(f"/events/{event_id}/edit", data=data_two)
    assert clash.status_code == 409
    assert "Someone saved this event while you were editing" in clash.text
    assert 'name="version" value="2"' in clash.text
    with Session(committed) as s:
        event = s.get(Event, event_id)
        assert event is not None and (event.title, event.location) == ("Edited by the first analyst", None)
    one.close()
    two.close()


def test_conflict_page_shows_both_versions_and_reapply_saves_mine(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    page = analyst.get(f"/events/{event.id}/edit").text
    assert 'name="version" value="1"' in page
    # A colleague saves first.
    other = event_input(event)
    update_event(db, event.id, edited(other, title="Colleague's better title"), None, 1, "colleague fix")
    db.commit()

    mine = {
        "version": "1",
        "title": "My title",
        "kind": "offer",
        "status": "confirmed",
        "date_year": "2025",
        "date_month": "10",
        "date_day": "14",
        "countries-0-code": "RUS",
        "countries-0-role": "supplier",
        "countries-1-code": "VEN",
        "countries-1-role": "recipient",
        "sources-0-publisher": "TASS",
        "sources-0-reliability": "C",
        "sources-0-credibility": "3",
        "reason": "my reason",
        "confirm_single_origin": "1",  # confirmed on TASS alone: the analyst has said so
    }
    response = analyst.post(f"/events/{event.id}/edit", data=mine)
    assert response.status_code == 409
    html = response.text
    assert "Colleague&#39;s better title" in html and "My title" in html
    assert "colleague fix" in html
    # both changed the title: the analyst chooses (yours by default); only I changed the status
    assert re.search(r'<tr class="differs outcome-both">\s*<th scope="row">Title', html)
    assert 'name="pick-title" value="mine" checked' in html
    assert re.search(r'<tr class="differs outcome-mine">\s*<th scope="row">Status', html)
    assert re.search(r'<tr class="same outcome-same">\s*<th scope="row">Kind', html)
    assert 'name="version" value="2"' in html  # re-apply goes on top of the newer version
    assert "Discard mine" in html
    db.refresh(event)
    assert (event.title, event.version) == ("Colleague's better title", 2)

    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    hidden.pop("csrf_token")
    assert hidden["title"] == "My title" and hidden["reason"] == "my reason"
    review = analyst.post(f"/events/{event.id}/edit", data={**hidden, "review": "1"})
    assert review.status_code == 200 and 'name="version" value="2"' in review.text
    assert 'name="title" value="My title"' in review.text

    again = analyst.post(f"/events/{event.id}/edit", data={**hidden, "pick-title": "mine", "save": "1"})
    assert again.status_code == 303
    db.refresh(event)
    assert (event.title, event.status, event.version) == ("My title", "confirmed", 3)
    actions = db.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_id == event.id).order_by(AuditEntry.id)
    ).all()
    assert actions == ["create", "update", "update"]


def test_stale_version_never_overwrites(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    update_event(db, event.id, edited(event_input(event), title="Second"), None, 1)
    db.commit()
    data = {"version": "1", "title": "Stale", "kind": "offer", "date_year": "2025"}
    assert analyst.post(f"/events/{event.id}/edit", data=data).status_code == 409
    db.refresh(event)
    assert event.title == "Second"


def form_fields(html: str) -> dict[str, str]:
    """The values a browser would post from a rendered edit form."""
    out = dict(re.findall(r'<input[^>]*name="([^"]+)" value="([^"]*)"', html))
    for name, block in re.findall(r'<select id="[^"]*" name="([^"]+)"(.*?)</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', block)
        out[name] = chosen[1] if chosen else ""
    out.update(re.findall(r'<textarea id="[^"]*" name="([^"]+)"[^>]*>([^<]*)</textarea>', html))
    out.pop("save", None)
    return out


def test_reapply_keeps_the_colleagues_change_to_fields_i_did_not_touch(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    mine = {
        **form_fields(analyst.get(f"/events/{event.id}/edit").text),
        "status": "confirmed",
        "confirm_single_origin": "1",
    }
    # The colleague sets the location and a new source grade meanwhile.
    theirs = event_input(event)
    sources = [theirs.sources[0].model_copy(update={"credibility": 2})]
    update_event(
        db, event.id, edited(theirs, location="Caracas", sources=[s.model_dump() for s in sources]), None, 1
    )
    db.commit()

    clash = analyst.post(f"/events/{event.id}/edit", data=mine)
    assert clash.status_code == 409
    html = clash.text
    assert re.search(r'<tr class="differs outcome-theirs">\s*<th scope="row">Location', html)
    assert re.search(r'<tr class="differs outcome-theirs">\s*<th scope="row">Sources', html)
    assert re.search(r'<tr class="differs outcome-mine">\s*<th scope="row">Status', html)
    assert "outcome-both" not in html
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html))
    assert hidden["pick-location"] == "theirs" and hidden["pick-sources"] == "theirs"
    assert analyst.post(f"/events/{event.id}/edit", data={**hidden, "save": "1"}).status_code == 303
    db.refresh(event)
    assert (event.status, event.location, event.sources[0].credibility, event.version) == (
        "confirmed",
        "Caracas",
        2,
        3,
    )
    last = db.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == event.id).order_by(AuditEntry.id.desc())
    ).first()
    assert last is not None and set(last.changes) == {"status"}
