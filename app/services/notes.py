"""Notes on events: add, edit and delete, each audited; never touching the event, its version or line.

Analysts and admins write notes; every reader sees them. The author may edit or delete a note within
NOTE_EDIT_MINUTES of writing it (the fixed clock, app/domain/clock.py, tells); an admin may delete any.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.domain import clock
from app.models import Event, EventNote, User
from app.services.audit import record


class NoteError(ValueError):
    """A refused note (empty, too long), with a message for the author."""


class NoteNotFound(LookupError):
    """No such note on this (visible) event."""


class NoteLocked(PermissionError):
    """Not the author, or the edit window has passed."""


def editable_until(note: EventNote) -> datetime:
    """Until when the author may edit or delete the note."""
    return note.created_at + timedelta(minutes=get_settings().note_edit_minutes)


def can_edit(user: User | None, note: EventNote) -> bool:
    """The author, within the window."""
    return user is not None and note.author_id == user.id and clock.utcnow() < editable_until(note)


def can_delete(user: User | None, note: EventNote) -> bool:
    """The author within the window, or an admin at any time."""
    return user is not None and (user.role == "admin" or can_edit(user, note))


def event_notes(db: Session, event_id: int) -> list[EventNote]:
    """The notes of an event, oldest first (a conversation reads top down)."""
    stmt = (
        select(EventNote).where(EventNote.event_id == event_id).order_by(EventNote.created_at, EventNote.id)
    )
    return list(db.scalars(stmt))


def clean_body(body: str) -> str:
    """The note's text, or NoteError when empty or over the length limit (rendering makes it safe)."""
    body = body.replace("\r\n", "\n").strip()
    limit = get_settings().note_max_length
    if not body:
        raise NoteError("Write something: a note cannot be empty.")
    if len(body) > limit:
        raise NoteError(f"A note may be at most {limit:,} characters; this one has {len(body):,}.")
    return body


def _visible_event(db: Session, event_id: int) -> Event:
    event = db.get(Event, event_id)
    if event is None or event.deleted_at is not None:
        raise NoteNotFound(event_id)
    return event


def note_of(db: Session, event_id: int, note_id: int) -> EventNote:
    """One note of a visible event, or NoteNotFound."""
    _visible_event(db, event_id)
    note = db.get(EventNote, note_id)
    if note is None or note.event_id != event_id:
        raise NoteNotFound(note_id)
    return note


def add_note(db: Session, user: User, event_id: int, body: str) -> EventNote:
    """Add a note to a visible event (the event row is not touched)."""
    _visible_event(db, event_id)
    note = EventNote(
        event_id=event_id,
        author_id=user.id,
        author_name=user.username,
        body=clean_body(body),
        created_at=clock.utcnow(),  # the clock, not the database's: the edit window is counted on it
    )
    db.add(note)
    db.flush()
    record(
        db,
        user,
        "create",
        "event_note",
        note.id,
        {"event_id": event_id, "body": {"before": None, "after": note.body}},
    )
    return note


def edit_note(db: Session, user: User, event_id: int, note_id: int, body: str) -> EventNote:
    """Change a note's text: its author only, within the window."""
    note = note_of(db, event_id, note_id)
    if not can_edit(user, note):
        raise NoteLocked(note_id)
    text = clean_body(body)
    if text != note.body:
        record(
            db,
            user,
            "update",
            "event_note",
            note.id,
            {"event_id": event_id, "body": {"before": note.body, "after": text}},
        )
        note.body = text
        note.edited_at = clock.utcnow()
        db.flush()
    return note


def delete_note(db: Session, user: User, event_id: int, note_id: int) -> None:
    """Delete a note: its author within the window, or an admin (the text stays in the history)."""
    note = note_of(db, event_id, note_id)
    if not can_delete(user, note):
        raise NoteLocked(note_id)
    record(
        db,
        user,
        "delete",
        "event_note",
        note.id,
        {"event_id": event_id, "body": {"before": note.body, "after": None}},
    )
    db.delete(note)
    db.flush()
