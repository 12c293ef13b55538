"""The timeline: events newest first, grouped by month, filtered by the one EventFilter.

One URL, two shapes: the whole page, or for an HTMX request just #results plus out-of-band copies of
the facet lists and the chart (left out when only the page cursor changed). The aggregates over all
matching rows (total, facet counts, chart) come in the same response once the in-memory facts copy is
read (milliseconds); before that (a process still starting) the page carries placeholders that fetch
them from /timeline/count, /timeline/facets and /timeline/chart, which stay for that and for links.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.auth.deps import ViewerDep
from app.config import get_settings
from app.db import ReadSessionDep, SessionDep
from app.domain.dates import format_human
from app.filters import EventFilter, FilterError, page_filter
from app.queries.aggregates import facts
from app.queries.aggregates.cache import cached, data_version
from app.queries.aggregates.chart import chart_series
from app.queries.aggregates.facets import facet_counts, facet_skeleton
from app.queries.events import Cursor, Page, count_events, timeline_page
from app.queries.rows import TimelineRow
from app.templating import is_htmx, render

router = APIRouter()


def month_groups(page: Page[TimelineRow]) -> list[tuple[str, list[TimelineRow]]]:
    """Events grouped under 'Oct 2025'-style headings (year-precision events under their year)."""

    def key(e: TimelineRow) -> str:
        return format_human(e.date_start, "year" if e.date_precision == "year" else "month")

    return [(k, list(g)) for k, g in groupby(page.events, key=key)]


def parse_view(request: Request, db: Session) -> tuple[EventFilter, list[FilterError]]:
    """The filter of a page and every message about values it had to leave out (the people's policy)."""
    return page_filter(db, request.query_params)


def shown_date(f: EventFilter, errors: list[FilterError], given: Mapping[str, str], param: str) -> str:
    """The From/To box's text: the date in use, or the value as typed when it was refused (to fix it)."""
    if any(e.param == param for e in errors):
        return given.get(param, "")
    value = f.date_from if param == "from" else f.date_to
    return value.iso() if value else ""


def filter_state(f: EventFilter, errors: list[FilterError], given: Mapping[str, str]) -> dict[str, Any]:
    """What static/js/timeline.js needs to bring the panel's free-text inputs in line after a swap."""
    return {
        "q": f.q or "",
        "from": shown_date(f, errors, given, "from"),
        "to": shown_date(f, errors, given, "to"),
        "reliability_max": f.reliability_max or "",
        "errors": sorted({e.param for e in errors}),
    }


def aggregates(db: Session, f: EventFilter, what: tuple[str, ...]) -> dict[str, Any]:
    """Total, facets and/or chart of the filter, from the per-process single-flight cache.

    `db` is a read session: with DATABASE_REPLICA_URL these counts (and the facts copy they come from)
    are read on the replica, so they may trail a write by the replication delay; the page rows do not.
    """
    version = data_version(db)
    query = f.query_string()
    out: dict[str, Any] = {}
    if "total" in what:
        out["total"] = cached(("count", query, version), lambda: count_events(db, f))
    if "facets" in what:
        out["facets"] = cached(("facets", query, version), lambda: facet_counts(db, f))
    if "chart" in what:
        chart = cached(("chart", query, version), lambda: chart_series(db, f))
        out["chart"] = chart
        out["chart_json"] = chart.as_json()
    return out


@router.get("/", response_class=HTMLResponse)
def timeline(request: Request, db: SessionDep, read: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """Full page, or #results (plus the panel and chart out of band) for an HTMX request: one request a view.

    The total, the facet counts and the chart are counted on the in-memory copy, in this response when
    the copy is read (always, once the process says ready). Only while it is not are they left to the
    lazy routes, so a page never waits for a full read; `?aggregates=inline` (the <noscript> link)
    asks for them in the page even then.
    """
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
    inline = facts.ready(read) or (not partial and request.query_params.get("aggregates") == "inline")
    # Paging through the same filter leaves facets and chart as they are: only the total is sent.
    with_aggregates = not (partial and cursor is not None)
    context: dict[str, Any] = {
        "filter": f,
        "errors": errors,
        "page": page,
        "groups": month_groups(page),
        "total": None,
        "cursor": raw_cursor,
        "state": filter_state(f, errors, request.query_params),
        "with_aggregates": with_aggregates,
        "oob": partial,
        "query": f.query_string(),
        "inline": inline,
        "facets": facet_skeleton(f),
        "chart": None,
    }
    if inline:
        context.update(aggregates(read, f, ("total", "facets", "chart") if with_aggregates else ("total",)))
    if not partial:
        return render(request, "timeline/index.html", context)
    return render(
        request, "timeline/_partial.html", context, headers=push_url("/", f, cursor=raw_cursor or "")
    )


@router.get("/timeline/count", response_class=HTMLResponse)
def timeline_count(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """The total of the filter with its export links (fills the placeholder of #results)."""
    f, _ = parse_view(request, db)
    context = {"filter": f, **aggregates(db, f, ("total",))}
    return render(request, "timeline/_total.html", context)


@router.get("/timeline/facets", response_class=HTMLResponse)
def timeline_facets(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """The counted facet lists of the filter, each out of band over its count-free twin in the panel."""
    f, _ = parse_view(request, db)
    context = {"filter": f, **aggregates(db, f, ("facets",))}
    return render(request, "timeline/_facets_fragment.html", context)


@router.get("/timeline/chart", response_class=HTMLResponse)
def timeline_chart(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """The chart card of the filter (replaces its loading placeholder)."""
    f, _ = parse_view(request, db)
    context = {"filter": f, "oob": False, **aggregates(db, f, ("chart",))}
    return render(request, "timeline/_chart.html", context)


def push_url(path: str, f: EventFilter, **extra: str) -> dict[str, str]:
    """HX-Push-Url with the canonical address of the view (no empty fields, countries as codes).

    A form sends every field, empty ones too; the address bar should read like a link a person would share.
    """
    query = f.query_string(**extra)
    return {"HX-Push-Url": f"{path}?{query}" if query else path}
