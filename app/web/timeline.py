"""The timeline: events newest first, grouped by month, filtered by the one EventFilter."""

from __future__ import annotations

from itertools import groupby

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.deps import ViewerDep
from app.config import get_settings
from app.dates import format_human
from app.db import SessionDep
from app.filters import EventFilter, FilterError
from app.models import Event
from app.queries.events import Cursor, Page, count_events, timeline_page
from app.templating import is_htmx, render

router = APIRouter()


def month_groups(page: Page) -> list[tuple[str, list[Event]]]:
    """Events grouped under 'Oct 2025'-style headings (year-precision events under their year)."""

    def key(e: Event) -> str:
        return format_human(e.date_start, "year" if e.date_precision == "year" else "month")

    return [(k, list(g)) for k, g in groupby(page.events, key=key)]


@router.get("/", response_class=HTMLResponse)
def timeline(request: Request, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Full page, or just the rows for an HTMX request."""
    f = EventFilter.parse(request.query_params)
    errors = list(f.errors)
    cursor = None
    raw_cursor = request.query_params.get("cursor")
    if raw_cursor:
        try:
            cursor = Cursor.decode(raw_cursor)
        except ValueError as exc:
            errors.append(FilterError("cursor", str(exc)))
    page = timeline_page(db, f, cursor, get_settings().page_size)
    context = {
        "filter": f,
        "errors": errors,
        "page": page,
        "groups": month_groups(page),
        "total": count_events(db, f),
        "cursor": raw_cursor,
    }
    template = "timeline/_rows.html" if is_htmx(request) else "timeline/index.html"
    return render(request, template, context)
