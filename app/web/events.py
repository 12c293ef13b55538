"""The event page: every field, sources with grades, linked names and the history."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from app.auth.deps import ViewerDep
from app.db import SessionDep
from app.queries.audit import event_history
from app.queries.editing import deleted_event_or_none
from app.queries.events import event_or_none
from app.services.evidence import by_source
from app.templating import render

router = APIRouter()


@router.get("/events/{event_id:int}", response_class=HTMLResponse)
def event_detail(request: Request, event_id: int, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Show one event."""
    event = event_or_none(db, event_id)
    if event is None and principal.can("admin"):
        # Admins still reach a soft-deleted event, shown with a "Deleted" banner and a Restore button.
        event = deleted_event_or_none(db, event_id)
    if event is None:
        raise HTTPException(404, "No event with this number. It may have been deleted.")
    ctx = {
        "event": event,
        "history": event_history(db, event.id),
        "files": by_source(event.files),  # loaded with the event (metadata only)
    }
    return render(request, "events/detail.html", ctx)
