"""Editing actors and systems (names, aliases, country) and merging two entries into one.

One set of handlers serves every reference kind (app/services/reference.py REFERENCE_KINDS); the routes
only bind a kind to its URLs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.deps import AdminDep, AnalystDep, Principal
from app.db import SessionDep
from app.domain.vocab import ACTOR_TYPES
from app.queries.editing import entity_history, event_count
from app.queries.families import descendant_ids
from app.services.events import find_entry
from app.services.reference import (
    ACTORS,
    ORIGINS,
    SYSTEMS,
    MergeError,
    ReferenceConflict,
    ReferenceKind,
    merge_entries,
    update_entry,
)
from app.templating import render

router = APIRouter()

MESSAGES = {
    "name": "Enter the actor's name.",
    "designation": "Enter the system's designation.",
    "type": "Choose a type from the list.",
    "aliases": "Keep each alias under 200 characters (at most 50 aliases).",
    "title": "Keep the title under 500 characters.",
    "category": "Keep the category under 500 characters.",
    "parent": "Keep the family's designation under 200 characters.",
}

# What each kind's edit page shows beyond the common fields.
PAGE_EXTRAS: dict[str, Callable[[Session, Any], dict[str, Any]]] = {
    "actor": lambda db, entry: {"ACTOR_TYPES": ACTOR_TYPES},
    # The count is of this entry alone; with variants, its link must leave them out to agree.
    "system": lambda db, entry: {"exact": bool(descendant_ids(db, entry.id))},
    "origin": lambda db, entry: {},
}


async def _posted(request: Request) -> dict[str, str]:
    """The posted fields (async, so the routes can stay synchronous database code)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


Posted = Annotated[dict[str, str], Depends(_posted)]


def _errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "name"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if field in ("country", "origin") or (field == "designation" and err["type"] == "value_error"):
            # The project's own rules (an unknown country, "×N" in a designation) say what is wrong.
            out.setdefault(field, msg[:1].upper() + msg[1:] + ("" if msg.endswith(".") else "."))
        else:
            out.setdefault(field, MESSAGES.get(field, msg))
    return out


def _aliases(text: str) -> list[str]:
    return [line.strip() for line in text.replace(";", "\n").splitlines() if line.strip()]


def _entry_or_404(db: Session, kind: ReferenceKind, entry_id: int) -> Any:
    entry = db.get(kind.model, entry_id)
    if entry is None:
        raise HTTPException(404, f"No {kind.noun} with this number. It may have been merged into another.")
    return entry


def _edit_page(
    request: Request,
    db: Session,
    kind: ReferenceKind,
    entry: Any,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    ctx = {
        "kind": kind.noun,
        "entry": entry,
        "values": values,
        "errors": errors,
        "events": event_count(db, kind.column(), entry.id),
        **PAGE_EXTRAS[kind.noun](db, entry),
        "history": entity_history(db, kind.noun, entry.id),
        "saved": request.query_params.get("saved"),
        "merged": request.query_params.get("merged"),
    }
    return render(request, "reference_edit/edit.html", ctx, status_code=status)


def _edit_form(request: Request, db: Session, kind: ReferenceKind, entry_id: int) -> HTMLResponse:
    entry = _entry_or_404(db, kind, entry_id)
    values = {
        field: "\n".join(value) if isinstance(value, list) else (value or "")
        for field, value in kind.snapshot(entry).items()
    }
    return _edit_page(request, db, kind, entry, values, {})


def _save(
    request: Request, db: Session, kind: ReferenceKind, entry_id: int, values: dict[str, str], who: Principal
) -> Response:
    entry = _entry_or_404(db, kind, entry_id)
    # An empty optional field is left out: the edit's default applies (none, or an actor's "person").
    fields = [f for f in kind.edit.model_fields if f not in (kind.name_field, "aliases")]
    try:
        data = kind.edit.model_validate(
            {
                kind.name_field: values.get(kind.name_field, ""),
                "aliases": _aliases(values.get("aliases", "")),
                **{f: values[f] for f in fields if values.get(f)},
            }
        )
        update_entry(db, kind, entry.id, data, who.user)
        db.commit()
    except ValidationError as exc:
        db.rollback()
        return _edit_page(request, db, kind, entry, values, _errors(exc), 422)
    except ReferenceConflict as exc:
        db.rollback()
        entry = _entry_or_404(db, kind, entry_id)
        return _edit_page(request, db, kind, entry, values, {exc.field: exc.message}, 422)
    except Exception:
        db.rollback()
        raise
    return RedirectResponse(f"/{kind.plural}/{entry_id}/edit?saved=1", status_code=303)


@router.get("/actors/{actor_id:int}/edit", response_class=HTMLResponse)
def edit_actor(request: Request, actor_id: int, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The actor's edit form: name, aliases (one per line), type, country, title."""
    return _edit_form(request, db, ACTORS, actor_id)


@router.post("/actors/{actor_id:int}/edit", response_class=HTMLResponse)
def save_actor(
    request: Request, actor_id: int, values: Posted, db: SessionDep, principal: AnalystDep
) -> Response:
    """Save the actor (match keys follow the name and aliases), or re-render with messages (422)."""
    return _save(request, db, ACTORS, actor_id, values, principal)


@router.get("/systems/{system_id:int}/edit", response_class=HTMLResponse)
def edit_system(request: Request, system_id: int, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The system's edit form: designation, aliases, category, origin, the family it is a variant of."""
    return _edit_form(request, db, SYSTEMS, system_id)


@router.post("/systems/{system_id:int}/edit", response_class=HTMLResponse)
def save_system(
    request: Request, system_id: int, values: Posted, db: SessionDep, principal: AnalystDep
) -> Response:
    """Save the system, or re-render with messages (422)."""
    return _save(request, db, SYSTEMS, system_id, values, principal)


# ---- merges -------------------------------------------------------------------------------------------


def _merge_page(
    request: Request,
    kind: ReferenceKind,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    preview: dict[str, object] | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = {"kind": kind.noun, "plural": kind.plural, "values": values, "errors": errors or {}}
    return render(request, "reference_edit/merge.html", {**ctx, "preview": preview}, status_code=status)


def _merge(
    request: Request, kind: ReferenceKind, values: dict[str, str], db: Session, principal: Principal
) -> Response:
    errors: dict[str, str] = {}
    found: dict[str, Any] = {}
    for side in ("keep", "drop"):
        name = values.get(side, "").strip()
        entry = find_entry(db, kind.model, name) if name else None
        if not name:
            errors[side] = f"Enter the {kind.noun} to {'keep' if side == 'keep' else 'merge into it'}."
        elif entry is None:
            errors[side] = (
                f"No {kind.noun} is called “{name}” (by name or alias); pick one from the suggestions."
            )
        else:
            found[side] = entry
    if not errors and found["keep"].id == found["drop"].id:
        errors["drop"] = f"Both names point at the same {kind.noun}; nothing to merge."
    if errors:
        return _merge_page(request, kind, values, errors, status=422)
    keep, drop = found["keep"], found["drop"]
    if not values.get("confirm"):
        preview = {
            "keep": keep,
            "drop": drop,
            "keep_events": event_count(db, kind.column(), keep.id),
            "drop_events": event_count(db, kind.column(), drop.id),
        }
        return _merge_page(request, kind, values, preview=preview)
    try:
        merge_entries(db, kind, keep.id, drop.id, principal.user)
        db.commit()
    except MergeError as exc:
        db.rollback()
        return _merge_page(request, kind, values, {"drop": str(exc)}, status=422)
    except LookupError:  # a merge at the same time took one of the two away
        db.rollback()
        gone = f"One of these {kind.plural} was merged or deleted meanwhile; enter the two names again."
        return _merge_page(request, kind, values, {"drop": gone}, status=409)
    except Exception:
        db.rollback()
        raise
    return RedirectResponse(f"/{kind.plural}/{keep.id}/edit?merged=1", status_code=303)


def _pick(request: Request, kind: ReferenceKind, keep: str, drop: str) -> HTMLResponse:
    return _merge_page(request, kind, {"keep": keep[:200], "drop": drop[:200]})


# The pick page is a GET under /admin: a GET route never ends in an action verb (see tests/test_csrf.py).
@router.get("/admin/merge/actors", response_class=HTMLResponse)
def merge_actors_form(request: Request, principal: AdminDep, keep: str = "", drop: str = "") -> HTMLResponse:
    """Pick two actors: the one to keep and the one merged into it."""
    return _pick(request, ACTORS, keep, drop)


@router.post("/actors/merge", response_class=HTMLResponse)
def merge_actors_submit(request: Request, values: Posted, db: SessionDep, principal: AdminDep) -> Response:
    """Preview the merge, then (confirmed) move every link over and keep the old name as an alias."""
    return _merge(request, ACTORS, values, db, principal)


@router.get("/admin/merge/systems", response_class=HTMLResponse)
def merge_systems_form(request: Request, principal: AdminDep, keep: str = "", drop: str = "") -> HTMLResponse:
    """Pick two systems: the one to keep and the one merged into it."""
    return _pick(request, SYSTEMS, keep, drop)


@router.post("/systems/merge", response_class=HTMLResponse)
def merge_systems_submit(request: Request, values: Posted, db: SessionDep, principal: AdminDep) -> Response:
    """Preview the merge, then (confirmed) move every link over and keep the old designation as an alias."""
    return _merge(request, SYSTEMS, values, db, principal)


@router.get("/origins/{origin_id:int}/edit", response_class=HTMLResponse)
def edit_origin(request: Request, origin_id: int, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The origin's edit form: name and aliases ("Times (London)" for The Times)."""
    return _edit_form(request, db, ORIGINS, origin_id)


@router.post("/origins/{origin_id:int}/edit", response_class=HTMLResponse)
def save_origin(
    request: Request, origin_id: int, values: Posted, db: SessionDep, principal: AnalystDep
) -> Response:
    """Save the origin (its events' lines follow), or re-render with messages (422)."""
    return _save(request, db, ORIGINS, origin_id, values, principal)


@router.get("/admin/merge/origins", response_class=HTMLResponse)
def merge_origins_form(request: Request, principal: AdminDep, keep: str = "", drop: str = "") -> HTMLResponse:
    """Pick two origins: the one to keep and the one merged into it."""
    return _pick(request, ORIGINS, keep, drop)


@router.post("/origins/merge", response_class=HTMLResponse)
def merge_origins_submit(request: Request, values: Posted, db: SessionDep, principal: AdminDep) -> Response:
    """Preview, then (confirmed) point every source at the kept origin and recount corroboration."""
    return _merge(request, ORIGINS, values, db, principal)
