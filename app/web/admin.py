"""Admin pages: the landing page, the soft-deleted events and restoring one."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.auth.deps import AdminDep
from app.db import SessionDep
from app.queries.editing import count_deleted, deleted_events
from app.services.events import EventNotFound, restore_event
from app.templating import render

router = APIRouter()


@router.get("/admin", response_class=HTMLResponse)
def admin_home(request: Request, db: SessionDep, principal: AdminDep) -> HTMLResponse:
    """Where an admin finds users, deleted events and reference-data merges."""
    return render(request, "admin/index.html", {"deleted_count": count_deleted(db)})


@router.get("/admin/deleted", response_class=HTMLResponse)
def deleted_list(request: Request, db: SessionDep, principal: AdminDep) -> HTMLResponse:
    """Soft-deleted events, newest deletion first, each with a Restore button."""
    return render(
        request,
        "admin/deleted.html",
        {
            "events": deleted_events(db),
            "total": count_deleted(db),
            "restored": request.query_params.get("restored"),
        },
    )


@router.post("/admin/events/{event_id:int}/restore")
def restore(request: Request, event_id: int, db: SessionDep, principal: AdminDep) -> RedirectResponse:
    """Bring a deleted event back with all its links (audited), then show it."""
    try:
        restore_event(db, event_id, principal.user)
        db.commit()
    except EventNotFound:
        db.rollback()
        raise HTTPException(404, "No event with this number.") from None
    except Exception:
        db.rollback()
        raise
    return RedirectResponse(f"/events/{event_id}?restored=1", status_code=303)
