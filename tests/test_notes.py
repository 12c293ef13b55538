"""Notes on events: safe Markdown against XSS payloads, the edit window on a fixed clock, roles, the API,
and the event's fields, version and export line left as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.accounts import create_token
from app.domain import clock
from app.domain.markdown import note_html
from app.models import AuditEntry, Event, EventLine, EventNote
from app.queries.aggregates.data_version import VERSION_SQL
from tests.conftest import Client, make_user
from tests.factories import make_event

# Each payload, and what must never be in the page: an element or attribute that runs script.
XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<a href="javascript:alert(1)">x</a>',
    "<iframe src=https://evil.example></iframe>",
    "<svg onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "[x](vbscript:msgbox(1))",
    '**bold** <b onmouseover="alert(1)">hover</b>',
    "![pixel](https://tracker.example/p.png)",
    "`<script>alert(1)</script>`",
]
SAFE_TAGS = {"p", "a", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "br", "hr"}
SAFE_ATTRIBUTES = {"href", "title", "rel", "start"}


class Elements(HTMLParser):
    """Every element and attribute of an HTML fragment, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def assert_inert(html: str) -> None:
    """Only allowed elements, no event handler or style, and links to http(s) or mailto only."""
    parser = Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag in SAFE_TAGS, html
        for name, value in attrs:
            assert name in SAFE_ATTRIBUTES, html
            if name == "href":
                assert (value or "").lower().startswith(("http://", "https://", "mailto:")), html


@pytest.mark.parametrize("payload", XSS)
def test_markdown_neutralises_active_content(payload: str) -> None:
    assert_inert(note_html(payload))


def test_markdown_keeps_ordinary_formatting() -> None:
    html = note_html("**Seen** in _two_ outlets:\n\n- [TASS](https://tass.com/a)\n- `Kalibr`")
    assert "<strong>Seen</strong>" in html and "<em>two</em>" in html
    assert '<a href="https://tass.com/a" rel="noopener noreferrer nofollow">TASS</a>' in html
    assert "<code>Kalibr</code>" in html


@pytest.mark.parametrize("payload", XSS)
def test_note_page_never_executes_payloads(analyst: Client, db: Session, payload: str) -> None:
    event = make_event(db)
    db.commit()
    r = analyst.post(f"/events/{event.id}/notes", data={"body": payload})
    assert r.status_code == 303
    page = analyst.get(f"/events/{event.id}").text
    notes_part = page.split('id="notes"', 1)[1].split('id="history"', 1)[0]
    body = notes_part.split('class="note-body">', 1)[1].split("</div>", 1)[0]
    assert_inert(body)
    assert "<script" not in notes_part


def test_note_leaves_the_event_version_fields_and_export_line_alone(analyst: Client, db: Session) -> None:
    event = make_event(db)
    db.commit()
    line_before = db.scalar(select(EventLine.line).where(EventLine.event_id == event.id))
    version_before, updated_before = event.version, event.updated_at
    data_version_before = db.execute(VERSION_SQL).one()
    r = analyst.post(f"/events/{event.id}/notes", data={"body": "Checked with a second source."})
    assert r.status_code == 303 and r.headers["location"].startswith(f"/events/{event.id}#note-")
    db.expire_all()
    fresh = db.get(Event, event.id)
    assert fresh is not None
    assert (fresh.version, fresh.updated_at) == (version_before, updated_before)
    assert db.scalar(select(EventLine.line).where(EventLine.event_id == event.id)) == line_before
    assert db.execute(VERSION_SQL).one() == data_version_before  # no count or cache moved
    api = analyst.get(f"/api/v1/events/{event.id}").json()
    assert "notes" not in api and api["version"] == version_before
    # The note is in the history as its own entity, not as a change of the event.
    audit = db.scalars(select(AuditEntry).where(AuditEntry.entity_type == "event_note")).one()
    assert audit.changes["event_id"] == event.id
    assert (
        db.scalars(
            select(AuditEntry).where(AuditEntry.entity_type == "event", AuditEntry.action == "update")
        ).all()
        == []
    )


def test_over_length_and_empty_notes_are_refused_with_the_text_kept(analyst: Client, db: Session) -> None:
    event = make_event(db)
    db.commit()
    long = "x" * 4001
    r = analyst.post(f"/events/{event.id}/notes", data={"body": long})
    assert r.status_code == 422
    assert "at most 4,000 characters" in r.text and long in r.text
    r = analyst.post(f"/events/{event.id}/notes", data={"body": "   "})
    assert r.status_code == 422 and "cannot be empty" in r.text
    assert db.scalars(select(EventNote)).all() == []


def test_viewers_read_notes_but_cannot_write(client: Client, db: Session) -> None:
    event = make_event(db)
    author = make_user(db, "analyst")
    note = EventNote(event_id=event.id, author_id=author.id, author_name=author.username, body="**ok**")
    note.created_at = clock.utcnow()
    db.add(note)
    db.commit()
    client.login("viewer")
    page = client.get(f"/events/{event.id}").text
    assert "<strong>ok</strong>" in page and 'action="/events/' + str(event.id) + '/notes"' not in page
    assert client.post(f"/events/{event.id}/notes", data={"body": "hi"}).status_code == 403


def test_edit_window_on_a_fixed_clock(analyst: Client, db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [datetime(2026, 12, 6, 9, 0, tzinfo=UTC)]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    event = make_event(db)
    db.commit()
    analyst.post(f"/events/{event.id}/notes", data={"body": "first take"})
    note = db.scalars(select(EventNote)).one()
    now[0] += timedelta(minutes=14)
    assert analyst.get(f"/events/{event.id}/notes/{note.id}/edit").status_code == 200
    assert (
        analyst.post(f"/events/{event.id}/notes/{note.id}/edit", data={"body": "second take"}).status_code
        == 303
    )
    db.refresh(note)
    assert note.body == "second take" and note.edited_at == now[0]
    assert "edited" in analyst.get(f"/events/{event.id}").text
    now[0] += timedelta(minutes=2)  # 16 minutes after writing: closed
    assert analyst.get(f"/events/{event.id}/notes/{note.id}/edit").status_code == 403
    assert analyst.post(f"/events/{event.id}/notes/{note.id}/edit", data={"body": "late"}).status_code == 403
    assert analyst.post(f"/events/{event.id}/notes/{note.id}/delete").status_code == 403
    assert f"/notes/{note.id}/edit" not in analyst.get(f"/events/{event.id}").text
    # Another analyst never could; an admin may still delete.
    other = Client(analyst.http.app, db)
    other.login("analyst")
    assert other.post(f"/events/{event.id}/notes/{note.id}/delete").status_code == 403
    admin = Client(analyst.http.app, db)
    admin.login("admin")
    assert admin.post(f"/events/{event.id}/notes/{note.id}/delete").status_code == 303
    assert db.get(EventNote, note.id) is None
    actions = db.scalars(
        select(AuditEntry.action).where(AuditEntry.entity_type == "event_note").order_by(AuditEntry.id)
    ).all()
    assert actions == ["create", "update", "delete"]


def test_notes_api(client: Client, db: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [datetime(2026, 12, 6, 9, 0, tzinfo=UTC)]
    monkeypatch.setattr(clock, "utcnow", lambda: now[0])
    event = make_event(db)
    analyst = make_user(db, "analyst")
    viewer = make_user(db, "viewer")
    _, a_raw = create_token(db, analyst, "t")
    _, v_raw = create_token(db, viewer, "t")
    db.commit()
    a = {"Authorization": f"Bearer {a_raw}"}
    v = {"Authorization": f"Bearer {v_raw}"}
    base = f"/api/v1/events/{event.id}/notes"
    made = client.post(base, json={"body": "See [TASS](javascript:alert(1)) <script>x</script>"}, headers=a)
    assert made.status_code == 201
    note = made.json()
    assert note["author"] == analyst.username
    assert_inert(note["html"])
    assert "&lt;script&gt;" in note["html"]  # shown as text
    assert note["editable_until"].startswith("2026-12-06T09:15")
    assert client.post(base, json={"body": "x"}, headers=v).status_code == 403
    listed = client.get(base, headers=v)
    assert listed.status_code == 200 and [n["id"] for n in listed.json()] == [note["id"]]
    too_long = client.post(base, json={"body": "y" * 4001}, headers=a)
    assert too_long.status_code == 422 and too_long.json()["detail"][0]["loc"] == ["body", "body"]
    assert client.get("/api/v1/events/999999/notes", headers=v).status_code == 404
    edited = client.patch(f"{base}/{note['id']}", json={"body": "better"}, headers=a)
    assert edited.status_code == 200 and edited.json()["html"] == "<p>better</p>\n"
    now[0] += timedelta(minutes=20)
    assert client.patch(f"{base}/{note['id']}", json={"body": "late"}, headers=a).status_code == 403
    assert client.delete(f"{base}/{note['id']}", headers=a).status_code == 403
    assert client.get(f"/api/v1/events/{event.id}", headers=v).json()["version"] == event.version
    schema = client.get("/openapi.json").json()
    assert "/api/v1/events/{event_id}/notes" in schema["paths"]
    assert {"get", "post"} <= set(schema["paths"]["/api/v1/events/{event_id}/notes"])
    assert {"patch", "delete"} <= set(schema["paths"]["/api/v1/events/{event_id}/notes/{note_id}"])


def test_notes_of_a_deleted_event_are_not_found(analyst: Client, db: Session) -> None:
    event = make_event(db)
    db.commit()
    from app.services.events import delete_event

    delete_event(db, event.id, None)
    db.commit()
    assert analyst.post(f"/events/{event.id}/notes", data={"body": "x"}).status_code == 404
