"""The timeline: events newest first, grouped by month, filtered by the one EventFilter.

One URL, two shapes: the whole page, or for an HTMX request just #results plus out-of-band copies of
the facet lists and the chart (left out when only the page cursor changed, since they cannot differ).
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.auth.deps import ViewerDep
from app.config import get_settings
from app.dates import format_human
from app.db import SessionDep
from app.filters import PARAMS, EventFilter, FilterError
from app.models import Event
from app.queries.cache import cached, data_version
from app.queries.chart import chart_series
from app.queries.events import Cursor, Page, count_events, drop_unknown_names, timeline_page
from app.queries.facets import facet_counts
from app.templating import is_htmx, render

router = APIRouter()
SINGLE_VALUED = ("q", "stage_min", "from", "to", "reliability_max")


def month_groups(page: Page) -> list[tuple[str, list[Event]]]:
    """Events grouped under 'Oct 2025'-style headings (year-precision events under their year)."""

    def key(e: Event) -> str:
        return format_human(e.date_start, "year" if e.date_precision == "year" else "month")

    return [(k, list(g)) for k, g in groupby(page.events, key=key)]


def parse_view(request: Request, db: Session) -> tuple[EventFilter, list[FilterError]]:
    """The filter of a page and every message about values it had to leave out."""
    f = EventFilter.parse(request.query_params)
    errors = list(f.errors)
    # A single-valued parameter with a problem ("to" before "from", q given twice) is left out whole, so
    # the page's "left out" message is true and the rest of the filter still shows events.
    for e in errors:
        if e.param in SINGLE_VALUED and getattr(f, PARAMS[e.param]) is not None:
            f = f.without(e.param)
    f, unknown = drop_unknown_names(db, f)
    return f, [*errors, *unknown]


def filter_state(f: EventFilter, errors: list[FilterError]) -> dict[str, Any]:
    """What static/js/timeline.js needs to bring the panel's free-text inputs in line after a swap."""
    return {
        "q": f.q or "",
        "from": f.date_from.iso() if f.date_from else "",
        "to": f.date_to.iso() if f.date_to else "",
        "reliability_max": f.reliability_max or "",
        "errors": sorted({e.param for e in errors}),
    }


@router.get("/", response_class=HTMLResponse)
def timeline(request: Request, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Full page, or #results with out-of-band facets and chart for an HTMX request."""
    f, errors = parse_view(request, db)
    cursor = None
    raw_cursor = request.query_params.get("cursor")
    if raw_cursor:
        try:
            cursor = Cursor.decode(raw_cursor)
        except ValueError as exc:
            errors.append(FilterError("cursor", str(exc)))
            raw_cursor = None
    page = timeline_page(db, f, cursor, get_settings().page_size)
    partial = is_htmx(request)
    version = data_version(db)
    query = f.query_string()
    # Paging through the same filter leaves facets and chart as they are: skip their queries.
    with_aggregates = not (partial and cursor is not None)
    context: dict[str, Any] = {
        "filter": f,
        "errors": errors,
        "page": page,
        "groups": month_groups(page),
        "total": cached(("count", query, version), lambda: count_events(db, f)),
        "cursor": raw_cursor,
        "state": filter_state(f, errors),
        "with_aggregates": with_aggregates,
        "oob": partial,
    }
    if with_aggregates:
        # Same session as the page: a second pooled connection per request could starve the pool under load.
        context["facets"] = cached(("facets", query, version), lambda: facet_counts(db, f))
        chart = cached(("chart", query, version), lambda: chart_series(db, f))
        context["chart"] = chart
        context["chart_json"] = chart.as_json()
    if not partial:
        return render(request, "timeline/index.html", context)
    return render(
        request, "timeline/_partial.html", context, headers=push_url("/", f, cursor=raw_cursor or "")
    )


def push_url(path: str, f: EventFilter, **extra: str) -> dict[str, str]:
    """HX-Push-Url with the canonical address of the view (no empty fields, countries as codes).

    A form sends every field, empty ones too; the address bar should read like a link a person would share.
    """
    query = f.query_string(**extra)
    return {"HX-Push-Url": f"{path}?{query}" if query else path}
