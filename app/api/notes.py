"""/api/v1/events/{id}/notes: list, add, edit, delete notes (not part of the event, outside its version)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Response, Security
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from app.api.events import AUTH_ERRORS, COMMON_ERRORS, INVALID, NOT_FOUND, EventId, bearer
from app.auth.deps import AnalystDep, Forbidden, ViewerDep
from app.db import SessionDep
from app.domain.markdown import note_html
from app.models import EventNote, User
from app.queries.events import event_or_none
from app.services import notes

router = APIRouter(tags=["notes"], dependencies=[Security(bearer)], responses=COMMON_ERRORS)
NoteId = EventId  # the same integer range


class NoteIn(BaseModel):
    """A note's text in Markdown (raw HTML is shown as text; links may be http, https or mailto)."""

    body: str = Field(description="Markdown; at most NOTE_MAX_LENGTH characters (4,000 by default)")


class NoteOut(BaseModel):
    """A note as readers see it: the Markdown and its safe HTML."""

    id: int
    event_id: int
    author: str
    body: str = Field(description="the Markdown as written")
    html: str = Field(description="the Markdown rendered and sanitised (what the event page shows)")
    created_at: datetime
    edited_at: datetime | None
    editable_until: datetime = Field(description="the author may edit or delete it until then")

    @classmethod
    def of(cls, note: EventNote) -> NoteOut:
        """Build from a stored note."""
        return cls(
            id=note.id,
            event_id=note.event_id,
            author=note.author_name,
            body=note.body,
            html=note_html(note.body),
            created_at=note.created_at,
            edited_at=note.edited_at,
            editable_until=notes.editable_until(note),
        )


LOCKED: dict[int | str, dict[str, Any]] = {
    403: {"description": "Not the author, the edit window has passed, or your role does not allow this."}
}


def _event(db: SessionDep, event_id: int) -> None:
    if event_or_none(db, event_id) is None:
        raise HTTPException(404, f"No event {event_id}. It may have been deleted.")


def _refused(exc: notes.NoteError) -> RequestValidationError:
    return RequestValidationError([{"loc": ["body", "body"], "msg": str(exc), "type": "value_error"}])


def _user(principal: Any) -> User:
    assert principal.user is not None  # AnalystDep: signed in
    return principal.user


@router.get(
    "/events/{event_id}/notes",
    response_model=list[NoteOut],
    summary="The notes of an event, oldest first",
    responses={**AUTH_ERRORS, **NOT_FOUND},
)
def list_notes(event_id: EventId, db: SessionDep, principal: ViewerDep) -> Any:
    """Every note of a visible event."""
    _event(db, event_id)
    return [NoteOut.of(n) for n in notes.event_notes(db, event_id)]


@router.post(
    "/events/{event_id}/notes",
    response_model=NoteOut,
    status_code=201,
    summary="Add a note to an event",
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID},
)
def add_note(event_id: EventId, note: NoteIn, db: SessionDep, principal: AnalystDep) -> Any:
    """Add a note (analysts and admins); the event, its version and its export line do not change."""
    _event(db, event_id)
    try:
        created = notes.add_note(db, _user(principal), event_id, note.body)
    except notes.NoteError as exc:
        db.rollback()
        raise _refused(exc) from None
    db.commit()
    return NoteOut.of(created)


def _found(db: SessionDep, event_id: int, note_id: int) -> EventNote:
    try:
        return notes.note_of(db, event_id, note_id)
    except notes.NoteNotFound:
        raise HTTPException(404, f"No note {note_id} on event {event_id}.") from None


@router.patch(
    "/events/{event_id}/notes/{note_id}",
    response_model=NoteOut,
    summary="Change the text of your note (within the edit window)",
    responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID, **LOCKED},
)
def edit_note(event_id: EventId, note_id: NoteId, note: NoteIn, db: SessionDep, principal: AnalystDep) -> Any:
    """The author may change a note within NOTE_EDIT_MINUTES of writing it."""
    _found(db, event_id, note_id)
    try:
        edited = notes.edit_note(db, _user(principal), event_id, note_id, note.body)
    except notes.NoteLocked:
        raise Forbidden("Only the author may edit a note, within the edit window.") from None
    except notes.NoteError as exc:
        db.rollback()
        raise _refused(exc) from None
    db.commit()
    return NoteOut.of(edited)


@router.delete(
    "/events/{event_id}/notes/{note_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a note (its author within the edit window, or an admin)",
    responses={204: {"description": "Deleted."}, **AUTH_ERRORS, **NOT_FOUND, **LOCKED},
)
def delete_note(event_id: EventId, note_id: NoteId, db: SessionDep, principal: AnalystDep) -> Response:
    """Delete a note; its text stays in the history."""
    _found(db, event_id, note_id)
    try:
        notes.delete_note(db, _user(principal), event_id, note_id)
    except notes.NoteLocked:
        raise Forbidden("Only the author (within the edit window) or an admin may delete a note.") from None
    db.commit()
    return Response(status_code=204)
