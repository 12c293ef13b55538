"""Actors, systems and countries: lists with event counts, each name opening the filtered timeline."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.deps import ViewerDep
from app.db import ReadSessionDep
from app.queries.aggregates.lists import LIST_LIMIT, actor_list, country_list, system_list
from app.queries.reference import origin_list
from app.templating import is_htmx, render

router = APIRouter()


def _search(request: Request) -> str:
    """The list's search text, trimmed and bounded."""
    return request.query_params.get("q", "").strip()[:100]


def _page(request: Request, kind: str, rows: list[object], query: str) -> HTMLResponse:
    """Whole page, or only the table for an HTMX search."""
    context = {"kind": kind, "rows": rows, "q": query, "limit": LIST_LIMIT}
    template = f"reference/_{kind}_table.html" if is_htmx(request) else f"reference/{kind}.html"
    return render(request, template, context)


@router.get("/actors", response_class=HTMLResponse)
def actors(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """Actors with how many events name them."""
    q = _search(request)
    return _page(request, "actors", list(actor_list(db, q)), q)


@router.get("/systems", response_class=HTMLResponse)
def systems(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """Systems with how many events name them."""
    q = _search(request)
    return _page(request, "systems", list(system_list(db, q)), q)


@router.get("/origins", response_class=HTMLResponse)
def origins(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """Origins (who first reported what sources carry) with how many events rest on each."""
    q = _search(request)
    return _page(request, "origins", list(origin_list(db, q)), q)


@router.get("/countries", response_class=HTMLResponse)
def countries(request: Request, db: ReadSessionDep, principal: ViewerDep) -> HTMLResponse:
    """Countries named by events, with counts by role."""
    q = _search(request)
    return _page(request, "countries", list(country_list(db, q)), q)
