"""Links between events on the event page: add one (searching titles or numbers), remove one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.deps import AnalystDep, ViewerDep
from app.db import SessionDep
from app.domain.dates import format_human
from app.queries.events import event_or_none
from app.queries.links import suggest_events
from app.queries.reference import Suggestion
from app.services.links import LinkRefused, add_link, parse_ref, remove_link
from app.templating import render
from app.web.event_page import detail_page
from app.web.review import PostedFields

router = APIRouter()


@router.post("/events/{event_id:int}/links", response_class=HTMLResponse)
def add_link_submit(
    request: Request, event_id: int, fields: PostedFields, db: SessionDep, principal: AnalystDep
) -> Response:
    """Link this event to another; on a bad link the page comes back with the message beside the field."""
    link_type, target = fields.get("type", ""), fields.get("target", "")[:300]
    set_status = fields.get("set_status") == "1"
    form = {"type": link_type, "target": target, "set_status": set_status}
    try:
        add_link(db, event_id, parse_ref(target), link_type, principal.user, set_status=set_status)
        db.commit()
    except LinkRefused as exc:
        db.rollback()
        event = event_or_none(db, event_id)
        if event is None:
            raise HTTPException(404, "No event with this number. It may have been deleted.") from None
        return detail_page(request, db, event, 422, link_form=form, link_error=str(exc))
    return RedirectResponse(f"/events/{event_id}?linked=1#links", status_code=303)


@router.post("/events/{event_id:int}/links/{link_id:int}/delete", response_class=HTMLResponse)
def remove_link_submit(
    request: Request, event_id: int, link_id: int, db: SessionDep, principal: AnalystDep
) -> Response:
    """Remove one link (from either of its events)."""
    try:
        remove_link(db, link_id, event_id, principal.user)
        db.commit()
    except LinkRefused:
        db.rollback()
    return RedirectResponse(f"/events/{event_id}#links", status_code=303)


@router.get("/suggest/events", response_class=HTMLResponse)
def events_to_link(request: Request, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Events by number or title words, as `#12 · title` options for the link box."""
    # The event page's box is named `target`, the event form's `link_target` (hx-get sends the input's name).
    params = request.query_params
    text = (params.get("target") or params.get("link_target") or params.get("q") or "")[:100]
    exclude = request.query_params.get("exclude", "")
    found = suggest_events(db, text, int(exclude) if exclude.isdecimal() and len(exclude) <= 9 else None)
    suggestions = [
        Suggestion(
            f"#{e.id} · {e.title[:80]}",
            f"{e.kind}, {e.status}, {format_human(e.date_start, e.date_precision)}",
        )
        for e in found
    ]
    return render(request, "_options.html", {"suggestions": suggestions})
