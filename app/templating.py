"""Jinja2 environment: templates folder, filters for dates and names, and render helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from app.domain import clock
from app.domain.countries import country_name
from app.domain.dates import format_human, format_iso, format_span
from app.domain.evidence_types import ACCEPT, mebibytes
from app.domain.markdown import note_html
from app.domain.vocab import CREDIBILITY_LABELS, KINDS, LINK_WORDS, RELIABILITY_LABELS, STAGES, STATUSES
from app.services.events import relays

ROOT = Path(__file__).resolve().parent.parent
templates = Jinja2Templates(directory=str(ROOT / "templates"))
env = templates.env
# Templates ship with the code and change only with a restart, so no file-time check on every render.
env.auto_reload = False
env.filters["country_name"] = country_name
env.filters["human_date"] = format_human
env.filters["iso_date"] = format_iso
env.filters["span"] = lambda e: format_span(e.date_start, e.date_precision, e.date_end, e.date_end_precision)
env.filters["note_html"] = lambda body: Markup(note_html(body))  # noqa: S704 - cleaned by nh3 (allow-list)
env.filters["stage_label"] = lambda n: STAGES.get(n, "?")


def by_origin(sources: list[Any]) -> list[tuple[Any, list[Any]]]:
    """Sources grouped by origin, origins in the order their first source comes (the event page)."""
    groups: dict[int, tuple[Any, list[Any]]] = {}
    for source in sources:
        groups.setdefault(source.origin_id, (source.origin, []))[1].append(source)
    return list(groups.values())


def origins_label(n: int) -> str:
    """'1 origin', '2 origins'."""
    return f"{n} origin{'' if n == 1 else 's'}"


env.filters["by_origin"] = by_origin
env.filters["relays"] = lambda source: relays(source.publisher, source.origin)
env.filters["origins_label"] = origins_label
env.filters["filesize"] = mebibytes
env.globals.update(
    KINDS=KINDS,
    STATUSES=STATUSES,
    STAGES=STAGES,
    RELIABILITY_LABELS=RELIABILITY_LABELS,
    CREDIBILITY_LABELS=CREDIBILITY_LABELS,
    LINK_WORDS=LINK_WORDS,
    now_utc=lambda: clock.utcnow(),
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
