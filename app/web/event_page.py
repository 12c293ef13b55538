"""The event page's whole context (fields, links both ways, notes, history) and its rendering."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models import Event
from app.queries.audit import event_history
from app.queries.links import links_of
from app.services import notes
from app.services.evidence import by_source
from app.templating import render


def detail_page(request: Request, db: Session, event: Event, status: int = 200, **extra: Any) -> HTMLResponse:
    """Render the event page; `extra` carries a refused form's input and message back beside its field."""
    principal = request.state.principal
    context: dict[str, Any] = {
        "event": event,
        "links": links_of(db, event.id),
        "history": event_history(db, event.id),
        "files": by_source(event.files),  # loaded with the event (metadata only)
        "link_form": {"type": "denies", "target": "", "set_status": False},
        "link_error": None,
        "notes": notes.event_notes(db, event.id),
        "can_edit_note": lambda n: notes.can_edit(principal.user, n),
        "can_delete_note": lambda n: notes.can_delete(principal.user, n),
        "note_errors": {},
        "note_text": "",
        "note_minutes": get_settings().note_edit_minutes,
    }
    context.update(extra)
    return render(request, "events/detail.html", context, status_code=status)
