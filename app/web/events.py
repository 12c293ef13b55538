"""The event page: every field, sources with grades, linked names and events, notes and the history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import AnalystDep, Forbidden, ViewerDep
from app.db import SessionDep
from app.models import Event
from app.queries.editing import deleted_event_or_none
from app.queries.events import event_or_none
from app.services import notes
from app.templating import render
from app.web.event_page import detail_page

router = APIRouter()
NoteText = Annotated[str, Form(max_length=200_000)]  # the limit users see is NOTE_MAX_LENGTH (a message)


@router.get("/events/{event_id:int}", response_class=HTMLResponse)
def event_detail(request: Request, event_id: int, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Show one event."""
    event = event_or_none(db, event_id)
    if event is None and principal.can("admin"):
        # Admins still reach a soft-deleted event, shown with a "Deleted" banner and a Restore button.
        event = deleted_event_or_none(db, event_id)
    if event is None:
        raise HTTPException(404, "No event with this number. It may have been deleted.")
    return detail_page(request, db, event)


def _visible(db: Session, event_id: int) -> Event:
    event = event_or_none(db, event_id)
    if event is None:
        raise HTTPException(404, "No event with this number. It may have been deleted.")
    return event


@router.post("/events/{event_id:int}/notes", response_class=HTMLResponse)
def note_add(
    request: Request, event_id: int, db: SessionDep, principal: AnalystDep, body: NoteText = ""
) -> Response:
    """Add a note; a refused one re-renders the page with the text and the message beside it."""
    event = _visible(db, event_id)
    assert principal.user is not None  # AnalystDep: signed in
    try:
        note = notes.add_note(db, principal.user, event_id, body)
    except notes.NoteError as exc:
        db.rollback()
        return detail_page(request, db, event, 422, note_errors={"new": str(exc)}, note_text=body)
    db.commit()
    return RedirectResponse(f"/events/{event_id}#note-{note.id}", status_code=303)


def _note(db: Session, event_id: int, note_id: int) -> Any:
    try:
        return notes.note_of(db, event_id, note_id)
    except notes.NoteNotFound:
        raise HTTPException(404, "No such note on this event.") from None


@router.get("/events/{event_id:int}/notes/{note_id:int}/edit", response_class=HTMLResponse)
def note_edit_form(
    request: Request, event_id: int, note_id: int, db: SessionDep, principal: AnalystDep
) -> HTMLResponse:
    """The edit form of one's own note, while the window is open."""
    note = _note(db, event_id, note_id)
    if not notes.can_edit(principal.user, note):
        raise Forbidden("Only the author may edit a note, within a few minutes of writing it.")
    context = {"event_id": event_id, "note": note, "text": note.body, "error": None}
    return render(request, "events/note_edit.html", context)


@router.post("/events/{event_id:int}/notes/{note_id:int}/edit", response_class=HTMLResponse)
def note_edit(
    request: Request, event_id: int, note_id: int, db: SessionDep, principal: AnalystDep, body: NoteText = ""
) -> Response:
    """Save the new text of one's own note."""
    note = _note(db, event_id, note_id)
    assert principal.user is not None
    try:
        notes.edit_note(db, principal.user, event_id, note_id, body)
    except notes.NoteLocked:
        raise Forbidden("Only the author may edit a note, within a few minutes of writing it.") from None
    except notes.NoteError as exc:
        db.rollback()
        context = {"event_id": event_id, "note": note, "text": body, "error": str(exc)}
        return render(request, "events/note_edit.html", context, status_code=422)
    db.commit()
    return RedirectResponse(f"/events/{event_id}#note-{note_id}", status_code=303)


@router.post("/events/{event_id:int}/notes/{note_id:int}/delete")
def note_delete(event_id: int, note_id: int, db: SessionDep, principal: AnalystDep) -> Response:
    """Delete a note (its author within the window, or an admin)."""
    _note(db, event_id, note_id)
    assert principal.user is not None
    try:
        notes.delete_note(db, principal.user, event_id, note_id)
    except notes.NoteLocked:
        raise Forbidden("Only the author (within a few minutes) or an admin may delete a note.") from None
    db.commit()
    return RedirectResponse(f"/events/{event_id}#notes", status_code=303)
