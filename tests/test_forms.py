"""Event forms over HTTP: every field survives a create and an edit, and the row buttons work without JS."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import Actor, AuditEntry, Event, System
from tests.factories import make_event

FULL_FORM: dict[str, Any] = {
    "title": "Russia ships S-300 batteries to Venezuela",
    "summary": "Two batteries seen at port.\nSecond line.",
    "kind": "transfer",
    "status": "confirmed",
    "stage_override": "4",
    "date_year": "2025",
    "date_month": "10",
    "date_day": "",
    "date_end_year": "2025",
    "date_end_month": "11",
    "date_end_day": "3",
    "location": "La Guaira port",
    "tags": "caribbean, Air Defence",
    "countries-0-code": "RUS",
    "countries-0-role": "supplier",
    "countries-1-code": "China",
    "countries-1-role": "supplier",
    "countries-2-code": "VEN",
    "countries-2-role": "recipient",
    "countries-3-code": "cub",
    "countries-3-role": "intermediary",
    "actors-0-name": "Vladimir Padrino López",
    "actors-0-role": "recipient",
    "actors-0-type": "military",
    "actors-0-country": "VEN",
    "actors-0-title": "Defence Minister",
    "systems-0-designation": "S-300VM",
    "systems-0-quantity": "2",
    "systems-0-quantity_note": "",
    "systems-0-category": "air defence",
    "systems-0-origin": "RUS",
    "systems-1-designation": "Igla-S",
    "systems-1-quantity": "",
    "systems-1-quantity_note": "as many as 5,000",
    "sources-0-publisher": "Reuters",
    "sources-0-url": "https://reuters.com/x",
    "sources-0-title": "Venezuela receives missiles",
    "sources-0-published": "2025-10-15",
    "sources-0-quote": "Two S-300 batteries were unloaded",
    "sources-0-note": "via satellite imagery",
    "sources-0-reliability": "B",
    "sources-0-credibility": "2",
    "sources-1-publisher": "TASS",
    "sources-1-url": "",
    "sources-1-title": "",
    "sources-1-published": "2025-10",
    "sources-1-quote": "",
    "sources-1-reliability": "C",
    "sources-1-credibility": "3",
}


def post_new(client, form: dict[str, Any], **extra: Any):  # type: ignore[no-untyped-def]
    data = {"client_token": str(uuid.uuid4()), **form, **extra}
    return client.post("/events/new", data=data)


def created_id(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.text[:2000]
    m = re.fullmatch(r"/events/(\d+)\?saved=1", response.headers["location"])
    assert m, response.headers["location"]
    return int(m[1])


def test_new_form_renders_with_token_and_labels(analyst) -> None:  # type: ignore[no-untyped-def]
    page = analyst.get("/events/new")
    assert page.status_code == 200
    html = page.text
    assert re.search(r'name="client_token" value="[0-9a-f-]{36}"', html)
    assert 'name="csrf_token"' in html
    for label in ("Title", "Kind", "Year", "Month", "Day", "Publisher", "Source reliability"):
        assert f">{label}" in html
    assert "A — completely reliable" in html and "6 — truth cannot be judged" in html
    assert 'hx-get="/events/form-row/source?i=1"' in html


def test_every_field_round_trips(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event_id = created_id(post_new(analyst, FULL_FORM, confirm_duplicate="1"))
    event = db.get(Event, event_id)
    assert event is not None
    db.refresh(event)
    assert event.title == FULL_FORM["title"]
    assert event.summary == "Two batteries seen at port.\nSecond line."
    assert (event.kind, event.status, event.stage_override, event.stage) == ("transfer", "confirmed", 4, 4)
    assert (event.date_start.isoformat(), event.date_precision) == ("2025-10-01", "month")
    assert (event.date_end.isoformat(), event.date_end_precision) == ("2025-11-03", "day")  # type: ignore[union-attr]
    assert event.location == "La Guaira port"
    assert event.tags == ["caribbean", "air defence"]
    assert [(c.role, c.country_code) for c in event.countries] == [
        ("supplier", "RUS"),
        ("supplier", "CHN"),
        ("recipient", "VEN"),
        ("intermediary", "CUB"),
    ]
    actor = event.actors[0]
    assert (actor.actor.name, actor.role, actor.actor.type) == (
        "Vladimir Padrino López",
        "recipient",
        "military",
    )
    assert (actor.actor.country_code, actor.actor.title) == ("VEN", "Defence Minister")
    s300, igla = event.systems
    assert (s300.system.designation, s300.quantity, s300.system.category, s300.system.origin_code) == (
        "S-300VM",
        2,
        "air defence",
        "RUS",
    )
    assert (igla.system.designation, igla.quantity, igla.quantity_note) == (
        "Igla-S",
        None,
        "as many as 5,000",
    )
    reuters, tass = event.sources
    assert (reuters.publisher, reuters.url, reuters.title, reuters.quote, reuters.note) == (
        "Reuters",
        "https://reuters.com/x",
        "Venezuela receives missiles",
        "Two S-300 batteries were unloaded",
        "via satellite imagery",
    )
    assert (reuters.published_on.isoformat(), reuters.published_precision) == ("2025-10-15", "day")  # type: ignore[union-attr]
    assert (reuters.reliability, reuters.credibility) == ("B", 2)
    assert (tass.publisher, tass.url, tass.published_precision, tass.reliability, tass.credibility) == (
        "TASS",
        None,
        "month",
        "C",
        3,
    )

    page = analyst.get(f"/events/{event_id}?saved=1").text
    assert "Saved." in page
    for text in (
        "Russia ships S-300 batteries to Venezuela",
        "Second line.",
        "transfer",
        "confirmed",
        "Oct 2025 – 3 Nov 2025",
        "La Guaira port",
        "air defence",
        "China",
        "Cuba",
        "Vladimir Padrino López",
        "Defence Minister",
        "S-300VM",
        "as many as 5,000",
        "Reuters",
        "https://reuters.com/x",
        "Two S-300 batteries were unloaded",
        "via satellite imagery",
        "B2",
        "C3",
        "Oct 2025",
    ):
        assert text in page, text

    edit = analyst.get(f"/events/{event_id}/edit")
    assert edit.status_code == 200
    html = edit.text
    expect_values = {
        "title": FULL_FORM["title"],
        "date_year": "2025",
        "date_end_year": "2025",
        "date_end_day": "03",
        "location": "La Guaira port",
        "tags": "caribbean, air defence",
        "countries-1-code": "CHN",
        "countries-3-code": "CUB",
        "actors-0-name": "Vladimir Padrino López",
        "systems-0-designation": "S-300VM",
        "systems-0-quantity": "2",
        "systems-1-quantity_note": "as many as 5,000",
        "sources-0-publisher": "Reuters",
        "sources-0-url": "https://reuters.com/x",
        "sources-0-title": "Venezuela receives missiles",
        "sources-0-published": "2025-10-15",
        "sources-0-note": "via satellite imagery",
        "sources-1-published": "2025-10",
        "version": "1",
    }
    for name, value in expect_values.items():
        assert re.search(rf'name="{name}" value="{re.escape(value)}"', html), name
    selected = {
        "kind": "transfer",
        "status": "confirmed",
        "stage_override": "4",
        "date_month": "10",
        "date_end_month": "11",
        "countries-0-role": "supplier",
        "countries-3-role": "intermediary",
        "actors-0-role": "recipient",
        "sources-0-reliability": "B",
        "sources-0-credibility": "2",
        "sources-1-reliability": "C",
    }
    for name, value in selected.items():
        block = re.search(rf'<select id="[^"]*" name="{name}".*?</select>', html, re.S)
        assert block, name
        assert re.search(rf'<option value="{value}" selected>', block[0]), name
    assert "Two batteries seen at port.\nSecond line.</textarea>" in html
    assert "Two S-300 batteries were unloaded</textarea>" in html


def test_edit_changes_every_kind_of_field_and_records_one_audit_row(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    form = analyst.get(f"/events/{event.id}/edit").text
    version = re.search(r'name="version" value="(\d+)"', form)[1]  # type: ignore[index]
    data = {
        "version": version,
        "title": "Russia delivers Kalibr missiles to Venezuela",
        "kind": "transfer",
        "status": "confirmed",
        "date_year": "2025",
        "date_month": "10",
        "date_day": "20",
        "countries-0-code": "RUS",
        "countries-0-role": "supplier",
        "countries-1-code": "VEN",
        "countries-1-role": "recipient",
        "actors-0-name": "Sergei Ryabkov",
        "actors-0-role": "speaker",
        "systems-0-designation": "Kalibr",
        "systems-0-quantity": "8",
        "sources-0-publisher": "TASS",
        "sources-0-url": "https://tass.com/a",
        "sources-0-reliability": "C",
        "sources-0-credibility": "3",
        "sources-0-quote": "Nothing prevents us",
        "sources-1-publisher": "Reuters",
        "sources-1-reliability": "B",
        "sources-1-credibility": "2",
        "reason": "delivery confirmed",
        "tags": "caribbean",
    }
    before = db.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity_id == event.id))
    response = analyst.post(f"/events/{event.id}/edit", data=data)
    assert response.status_code == 303
    assert response.headers["location"] == f"/events/{event.id}?saved=1"
    db.expire_all()
    entries = list(
        db.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_type == "event", AuditEntry.entity_id == event.id)
            .order_by(AuditEntry.id)
        )
    )
    assert len(entries) == before + 1
    last = entries[-1]
    assert last.action == "update" and last.reason == "delivery confirmed"
    assert last.username == analyst.user.username
    assert set(last.changes) == {"title", "kind", "status", "date", "systems", "sources", "summary"}
    assert last.changes["date"] == {"before": "2025-10-14", "after": "2025-10-20"}
    assert last.changes["systems"] == {"before": ["Kalibr ×4"], "after": ["Kalibr ×8"]}
    assert len(last.changes["sources"]["after"]) == 2
    refreshed = db.get(Event, event.id)
    assert refreshed is not None and refreshed.version == int(version) + 1


def test_add_source_without_js_keeps_every_value(analyst) -> None:  # type: ignore[no-untyped-def]
    response = analyst.post(
        "/events/new",
        data={**FULL_FORM, "client_token": str(uuid.uuid4()), "title": "Typed title kept", "add_source": "1"},
    )
    assert response.status_code == 200
    html = response.text
    assert 'value="Typed title kept"' in html
    assert 'name="sources-2-publisher" value=""' in html  # the new, third row
    assert 'name="sources-1-publisher" value="TASS"' in html
    assert 'name="actors-0-title" value="Defence Minister"' in html
    assert "error-summary" not in html


def test_remove_row_without_js(analyst) -> None:  # type: ignore[no-untyped-def]
    response = analyst.post(
        "/events/new", data={**FULL_FORM, "client_token": str(uuid.uuid4()), "remove_source": "0"}
    )
    assert response.status_code == 200
    assert 'name="sources-0-publisher" value="TASS"' in response.text
    assert 'value="Reuters"' not in response.text.split('id="sources-rows"')[1].split("</section>")[0]


def test_htmx_row_fragment_and_next_button(analyst) -> None:  # type: ignore[no-untyped-def]
    response = analyst.get("/events/form-row/source?i=3", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert 'name="sources-3-publisher"' in response.text
    assert 'hx-swap-oob="true"' in response.text and "/events/form-row/source?i=4" in response.text
    assert "<html" not in response.text
    assert analyst.get("/events/form-row/nonsense?i=1").status_code == 404


def test_double_submit_makes_one_event(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    token = str(uuid.uuid4())
    data = {**FULL_FORM, "client_token": token, "confirm_duplicate": "1"}
    first = created_id(analyst.post("/events/new", data=data))
    second = created_id(analyst.post("/events/new", data=data))
    assert first == second
    assert db.scalar(select(func.count()).select_from(Event).where(Event.title == FULL_FORM["title"])) == 1


def test_existing_actor_found_by_alias_and_no_new_actor(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    actor = event.actors[0].actor
    actor.aliases = ["Sergey Rybakov"]
    actor.match_keys = ["sergei ryabkov", "sergey rybakov"]
    db.flush()
    actors_before = db.scalar(select(func.count()).select_from(Actor))
    systems_before = db.scalar(select(func.count()).select_from(System))
    data = {
        "title": "Unrelated words entirely",
        "kind": "statement",
        "date_year": "2024",
        "actors-0-name": "sergey rybakov",
        "actors-0-role": "speaker",
        "systems-0-designation": "KALIBR",
    }
    event_id = created_id(post_new(analyst, data, confirm_duplicate="1"))
    new = db.get(Event, event_id)
    assert new is not None
    assert [a.actor_id for a in new.actors] == [actor.id]
    assert db.scalar(select(func.count()).select_from(Actor)) == actors_before
    assert db.scalar(select(func.count()).select_from(System)) == systems_before


def test_viewer_cannot_open_or_post_forms(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    client.login("viewer")
    assert client.get("/events/new").status_code == 403
    assert client.post("/events/new", data=FULL_FORM).status_code == 403
    assert client.get(f"/events/{event.id}/edit").status_code == 403
    assert client.post(f"/events/{event.id}/delete", data={}).status_code == 403


def test_missing_csrf_token_is_refused(analyst) -> None:  # type: ignore[no-untyped-def]
    del analyst.http.headers["X-CSRF-Token"]
    response = analyst.post("/events/new", data={**FULL_FORM, "client_token": str(uuid.uuid4())})
    assert response.status_code == 403


def test_duplicate_warning_saves_nothing_until_confirmed(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    original = make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-10-14")
    data = {
        "client_token": str(uuid.uuid4()),
        "title": "Moscow ready to send cruise missiles to Caracas",
        "kind": "offer",
        "date_year": "2025",
        "date_month": "10",
        "date_day": "16",
        "countries-0-code": "RUS",
        "countries-0-role": "supplier",
        "countries-1-code": "VEN",
        "countries-1-role": "recipient",
        "sources-0-publisher": "RIA",
        "sources-0-reliability": "D",
        "sources-0-credibility": "4",
    }
    before = db.scalar(select(func.count()).select_from(Event))
    warned = analyst.post("/events/new", data=data)
    # 200: the input is valid; the page asks a question instead of reporting an error.
    assert warned.status_code == 200
    html = warned.text
    assert "This may already be recorded" in html
    assert f'href="/events/{original.id}"' in html and "Russia offers Kalibr missiles to Venezuela" in html
    assert "same supplier/recipient and kind" in html
    assert 'name="confirm_duplicate" value="1"' in html
    assert 'value="Moscow ready to send cruise missiles to Caracas"' in html  # nothing lost
    assert f'name="client_token" value="{data["client_token"]}"' in html  # same token: still one event
    assert db.scalar(select(func.count()).select_from(Event)) == before

    saved = analyst.post("/events/new", data={**data, "confirm_duplicate": "1"})
    new_id = created_id(saved)
    assert new_id != original.id
    assert db.scalar(select(func.count()).select_from(Event)) == before + 1


def test_similar_title_alone_warns(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    make_event(db, title="Russia offers Kalibr missiles to Venezuela", date="2025-06-01")
    data = {"title": "Russia offers Kalibr missile to Venezuela", "kind": "statement", "date_year": "2025"}
    warned = post_new(analyst, data)
    assert warned.status_code == 200 and "similar title" in warned.text


def test_no_warning_when_nothing_similar(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    make_event(db)
    data = {"title": "North Korea sends artillery shells", "kind": "transfer", "date_year": "2024"}
    created_id(post_new(analyst, data))
