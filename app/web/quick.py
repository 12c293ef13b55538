"""Quick add (/events/quick): paste a report, get the new-event form pre-filled; nothing is saved yet."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from app.auth.deps import AnalystDep
from app.clock import utcnow
from app.dates import PartialDateError, parse_partial
from app.db import SessionDep
from app.queries.reference import catalogue_entries, catalogue_version
from app.quickadd.catalogue import CatalogueScanner
from app.quickadd.extract import MAX_TEXT, extract
from app.quickadd.form import Source, draft_form, marked_text
from app.templating import render
from app.web.event_forms import render_event_form

router = APIRouter()

# One scanner per catalogue (actors, systems), rebuilt only when a name or alias changes (the digest
# that app.queries.reference keeps for its own "did you mean" index).
_scanners: dict[str, tuple[str, CatalogueScanner]] = {}
FIELD_LABELS = {
    "title": "Title",
    "kind": "Kind",
    "date": "Dates",
    "country": "Countries",
    "actor": "Actors",
    "system": "Systems",
    "quote": "Quotes",
}


def scanners(session: Session) -> tuple[CatalogueScanner, CatalogueScanner]:
    """The actor and system scanners for the catalogue as it is now (cached per catalogue version)."""
    out = []
    for param in ("actor", "system"):
        version = catalogue_version(session, param)
        hit = _scanners.get(param)
        if hit is None or hit[0] != version:
            hit = _scanners[param] = (version, CatalogueScanner(catalogue_entries(session, param)))
        out.append(hit[1])
    return out[0], out[1]


def _paste_page(
    request: Request, values: dict[str, str], errors: dict[str, str], status: int = 200
) -> HTMLResponse:
    ctx = {"values": values, "errors": errors, "max_text": MAX_TEXT}
    return render(request, "events/quick.html", ctx, status_code=status)


@router.get("/events/quick", response_class=HTMLResponse)
def quick_form(request: Request, principal: AnalystDep) -> HTMLResponse:
    """The paste form: the report's text, and optionally its URL, publisher and publication date."""
    return _paste_page(request, {}, {})


@router.post("/events/quick", response_class=HTMLResponse)
async def quick_draft(request: Request, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The new-event form pre-filled from the text, minus the suggestions dropped so far."""
    posted = await request.form()
    values = {k: str(posted.get(k) or "") for k in ("text", "url", "publisher", "published")}
    dropped = [str(v) for v in posted.getlist("dropped") if isinstance(v, str)][:500]
    drop = posted.get("drop")
    if posted.get("reset"):
        dropped = []
    elif isinstance(drop, str) and drop and drop not in dropped:
        dropped.append(drop)
    errors: dict[str, str] = {}
    text = values["text"].replace("\r\n", "\n")
    if len(text) > MAX_TEXT:
        errors["text"] = (
            f"This text has {len(text):,} characters; quick add reads up to {MAX_TEXT:,}. "
            "Paste the part that reports the event."
        )
    elif not text.strip():
        errors["text"] = "Paste the text of a report to get a draft."
    today = utcnow().date()
    published = today
    if values["published"].strip():
        try:
            period = parse_partial(values["published"])
            published = min(period.end, today)
            values["published"] = period.iso()
        except PartialDateError:
            errors["published"] = (
                "Enter the publication date as YYYY-MM-DD (or YYYY-MM, YYYY), or leave it empty."
            )
    if errors:
        return _paste_page(request, values, errors, status=422)
    actors, systems = scanners(db)
    draft = extract(text, published, actors, systems)
    source = Source(values["url"].strip()[:2000], values["publisher"].strip()[:300], values["published"])
    form = draft_form(draft, dropped, source)
    # Carried by the event form, so the page after saving can offer "add another event from this report".
    form.values.update({f"quick_{k}": v for k, v in values.items()} | {"quick_text": text})
    groups: dict[str, list[Any]] = {}
    for s in draft.suggestions:
        groups.setdefault(s.field, []).append(s)
    quick = {
        "values": values | {"text": text},
        "pieces": marked_text(draft, dropped),
        "groups": [(FIELD_LABELS[f], groups[f]) for f in FIELD_LABELS if f in groups],
        "dropped": dropped,
        "used": _used(draft, dropped),
        "published": published,
    }
    return render_event_form(request, form, quick=quick)


def _used(draft: Any, dropped: list[str]) -> set[str]:
    """The ids whose value is in the form: every kept name, and the first kept title, kind and date."""
    used: set[str] = set()
    seen: set[str] = set()
    for s in draft.kept(dropped):
        if s.field in ("title", "kind", "date"):
            if s.field in seen:
                continue
            seen.add(s.field)
        used.add(s.id)
    return used
