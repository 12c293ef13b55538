"""The review queue: /review lists due events oldest first under the one filter; marking one reviewed."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth.deps import AnalystDep, ViewerDep
from app.config import get_settings
from app.db import ReadSessionDep, SessionDep
from app.domain.review import due_since
from app.filters import FilterError
from app.queries.aggregates import facts
from app.queries.events import event_or_none
from app.queries.review import due_total, parse_cursor, review_page
from app.services.events import EventNotFound
from app.services.review import MAX_NOTE, ReviewRefused, mark_reviewed
from app.templating import env, is_htmx, render
from app.web.timeline import aggregates, filter_state, parse_view, push_url

router = APIRouter()
env.globals["review_due_since"] = lambda e: due_since(e.review_clock_at, e.kind, get_settings().review_days())


async def posted_fields(request: Request) -> dict[str, str]:
    """The posted form's text fields (async, so the route can stay a sync DB function)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


PostedFields = Annotated[dict[str, str], Depends(posted_fields)]


@router.get("/review", response_class=HTMLResponse)
def review_queue(request: Request, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Due events (claimed or reported, not reviewed for N days), longest waiting first, under the filter."""
    f, errors = parse_view(request, db)
    f = replace(f, due=False)  # the queue is "due" by definition: the panel and chips show the rest
    after = None
    raw_cursor = request.query_params.get("cursor")
    if raw_cursor:
        try:
            after = parse_cursor(raw_cursor)
        except ValueError as exc:
            errors.append(FilterError("cursor", str(exc)))
            raw_cursor = None
    page = review_page(db, f, after, get_settings().page_size)
    due = replace(f, due=True)
    context: dict[str, Any] = {
        "filter": f,
        "due_filter": due,
        "errors": errors,
        "page": page,
        "cursor": raw_cursor,
        "state": filter_state(f, errors, request.query_params),
        "query": due.query_string(),  # the panel's facet loader counts the queue, not the timeline
        "oob": is_htmx(request),
        "total": None,
        "days": get_settings().review_after_days,
        "by_kind": get_settings().review_after_days_by_kind,
    }
    # The rows came from the facts copy, so it is read: the total and facets cost milliseconds more.
    context["total"] = due_total(db, f)
    context.update(aggregates(db, due, ("facets",)))
    if not is_htmx(request):
        return render(request, "review/index.html", context)
    return render(
        request, "review/_partial.html", context, headers=push_url("/review", f, cursor=raw_cursor or "")
    )


@router.get("/review/count", response_class=HTMLResponse)
def review_count(request: Request, read: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """The top bar's badge: how many events are due for review (the facts copy, kept per minute)."""
    total = due_total(read) if facts.ready(read) else None
    return render(request, "review/_count.html", {"due_count": total})


def _back(fields: dict[str, str], event_id: int) -> str:
    """Where to go after a review: the queue view it came from, else the event (never another site)."""
    target = fields.get("next", "")
    return (
        target if target.startswith("/review") or target == f"/events/{event_id}" else f"/events/{event_id}"
    )


@router.get("/events/{event_id:int}/review", response_class=HTMLResponse)
def review_form(request: Request, event_id: int, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The "reviewed, still unconfirmed" form on its own page (the queue's rows carry it inline too)."""
    event = event_or_none(db, event_id)
    if event is None:
        raise HTTPException(404, "No event with this number. It may have been deleted.")
    next_url = request.query_params.get("next", f"/events/{event_id}")
    context = {"event": event, "note": "", "error": None, "next": _back({"next": next_url}, event_id)}
    return render(request, "review/form.html", context)


@router.post("/events/{event_id:int}/review", response_class=HTMLResponse)
def review_submit(
    request: Request, event_id: int, fields: PostedFields, db: SessionDep, principal: AnalystDep
) -> Response:
    """Record "reviewed, still unconfirmed" with its note: the clock restarts, the history says why."""
    note = fields.get("note", "")
    try:
        event = mark_reviewed(db, event_id, principal.user, note)
        db.commit()
    except EventNotFound:
        db.rollback()
        raise HTTPException(404, "No event with this number. It may have been deleted.") from None
    except ReviewRefused as exc:
        db.rollback()
        shown = event_or_none(db, event_id)
        if shown is None:
            raise HTTPException(404, "No event with this number.") from None
        context = {
            "event": shown,
            "note": note[: MAX_NOTE + 100],
            "error": str(exc),
            "next": _back(fields, event_id),
        }
        template = "review/_reviewed.html" if is_htmx(request) else "review/form.html"
        return render(request, template, context, status_code=422 if not is_htmx(request) else 200)
    if is_htmx(request):
        return render(
            request, "review/_reviewed.html", {"event": event, "error": None, "next": _back(fields, event_id)}
        )
    return RedirectResponse(_back(fields, event_id), status_code=303)
