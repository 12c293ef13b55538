"""Autocomplete: <option> lists for <datalist> elements, fetched by HTMX as the user types."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.auth.deps import ViewerDep
from app.db import SessionDep
from app.queries.reference import (
    Suggestion,
    suggest_actors,
    suggest_countries,
    suggest_origins,
    suggest_systems,
)
from app.templating import render

router = APIRouter(tags=["autocomplete"])


def _query(request: Request) -> str:
    """The typed text: `q`, or whatever single field the input sent (hx-get sends the input's own name)."""
    for key in ("q", *request.query_params.keys()):
        value = request.query_params.get(key, "")
        if value.strip():
            return value.strip()[:100]
    return ""


def _options(request: Request, suggestions: list[Suggestion]) -> HTMLResponse:
    return render(request, "_options.html", {"suggestions": suggestions})


@router.get("/suggest/actors", response_class=HTMLResponse)
def actors(request: Request, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Actors by name or alias."""
    return _options(request, suggest_actors(db, _query(request)))


@router.get("/suggest/systems", response_class=HTMLResponse)
def systems(request: Request, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Systems by designation or alias."""
    return _options(request, suggest_systems(db, _query(request)))


@router.get("/suggest/origins", response_class=HTMLResponse)
def origins(request: Request, db: SessionDep, principal: ViewerDep) -> HTMLResponse:
    """Origins (who first reported a source's information) by name or alias."""
    return _options(request, suggest_origins(db, _query(request)))


@router.get("/suggest/countries", response_class=HTMLResponse)
def countries(request: Request, principal: ViewerDep) -> HTMLResponse:
    """Countries by code or name."""
    return _options(request, suggest_countries(_query(request)))
