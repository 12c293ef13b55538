"""Jinja2 environment: templates folder, filters for dates and names, and render helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.domain.countries import country_name
from app.domain.dates import format_human, format_iso, format_span
from app.domain.evidence_types import ACCEPT, mebibytes
from app.domain.vocab import CREDIBILITY_LABELS, KINDS, RELIABILITY_LABELS, STAGES, STATUSES

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))
env = templates.env
env.filters["country_name"] = country_name
env.filters["human_date"] = format_human
env.filters["iso_date"] = format_iso
env.filters["span"] = lambda e: format_span(e.date_start, e.date_precision, e.date_end, e.date_end_precision)
env.filters["stage_label"] = lambda n: STAGES.get(n, "?")
env.filters["filesize"] = mebibytes
env.globals.update(
    KINDS=KINDS,
    STATUSES=STATUSES,
    STAGES=STAGES,
    RELIABILITY_LABELS=RELIABILITY_LABELS,
    CREDIBILITY_LABELS=CREDIBILITY_LABELS,
    EVIDENCE_ACCEPT=ACCEPT,
)


def is_htmx(request: Request) -> bool:
    """An HTMX request that wants a partial (history restores want the whole page)."""
    return (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-history-restore-request") != "true"
    )


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a template with the requester and CSRF token available to it."""
    principal = getattr(request.state, "principal", None)
    ctx = {"principal": principal, "csrf_token": principal.csrf_token if principal else ""}
    ctx.update(context or {})
    response = templates.TemplateResponse(request, name, ctx, status_code=status_code, headers=headers)
    response.headers["Vary"] = "HX-Request"
    return response
