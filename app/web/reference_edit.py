"""Editing actors and systems (names, aliases, country) and merging two entries into one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.auth.deps import AdminDep, AnalystDep
from app.db import SessionDep
from app.domain.vocab import ACTOR_TYPES
from app.models import Actor, System
from app.queries.editing import actor_event_count, entity_history, system_event_count
from app.queries.families import descendant_ids
from app.services.events import find_actor, find_system
from app.services.reference import (
    ActorEdit,
    MergeError,
    ReferenceConflict,
    SystemEdit,
    merge_actors,
    merge_systems,
    parent_designation,
    update_actor,
    update_system,
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


def _actor_or_404(db: Session, actor_id: int) -> Actor:
    actor = db.get(Actor, actor_id)
    if actor is None:
        raise HTTPException(404, "No actor with this number. It may have been merged into another.")
    return actor


def _system_or_404(db: Session, system_id: int) -> System:
    system = db.get(System, system_id)
    if system is None:
        raise HTTPException(404, "No system with this number. It may have been merged into another.")
    return system


def _actor_page(
    request: Request,
    db: Session,
    actor: Actor,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    ctx = {
        "kind": "actor",
        "entry": actor,
        "values": values,
        "errors": errors,
        "events": actor_event_count(db, actor.id),
        "history": entity_history(db, "actor", actor.id),
        "ACTOR_TYPES": ACTOR_TYPES,
        "saved": request.query_params.get("saved"),
        "merged": request.query_params.get("merged"),
    }
    return render(request, "reference_edit/edit.html", ctx, status_code=status)


def _system_page(
    request: Request,
    db: Session,
    system: System,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> HTMLResponse:
    ctx = {
        "kind": "system",
        "entry": system,
        "values": values,
        "errors": errors,
        "events": system_event_count(db, system.id),
        # The count is of this entry alone; with variants, its link must leave them out to agree.
        "exact": bool(descendant_ids(db, system.id)),
        "history": entity_history(db, "system", system.id),
        "saved": request.query_params.get("saved"),
        "merged": request.query_params.get("merged"),
    }
    return render(request, "reference_edit/edit.html", ctx, status_code=status)


@router.get("/actors/{actor_id:int}/edit", response_class=HTMLResponse)
def edit_actor(request: Request, actor_id: int, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The actor's edit form: name, aliases (one per line), type, country, title."""
    actor = _actor_or_404(db, actor_id)
    values = {
        "name": actor.name,
        "aliases": "\n".join(actor.aliases),
        "type": actor.type,
        "country": actor.country_code or "",
        "title": actor.title or "",
    }
    return _actor_page(request, db, actor, values, {})


@router.post("/actors/{actor_id:int}/edit", response_class=HTMLResponse)
def save_actor(
    request: Request, actor_id: int, values: Posted, db: SessionDep, principal: AnalystDep
) -> Response:
    """Save the actor (match keys follow the name and aliases), or re-render with messages (422)."""
    actor = _actor_or_404(db, actor_id)
    try:
        data = ActorEdit(
            name=values.get("name", ""),
            aliases=_aliases(values.get("aliases", "")),
            type=values.get("type") or "person",
            country=values.get("country") or None,
            title=values.get("title") or None,
        )
        update_actor(db, actor.id, data, principal.user)
        db.commit()
    except ValidationError as exc:
        db.rollback()
        return _actor_page(request, db, actor, values, _errors(exc), 422)
    except ReferenceConflict as exc:
        db.rollback()
        return _actor_page(request, db, _actor_or_404(db, actor_id), values, {exc.field: exc.message}, 422)
    except Exception:
        db.rollback()
        raise
    return RedirectResponse(f"/actors/{actor_id}/edit?saved=1", status_code=303)


@router.get("/systems/{system_id:int}/edit", response_class=HTMLResponse)
def edit_system(request: Request, system_id: int, db: SessionDep, principal: AnalystDep) -> HTMLResponse:
    """The system's edit form: designation, aliases, category, origin, the family it is a variant of."""
    system = _system_or_404(db, system_id)
    values = {
        "designation": system.designation,
        "aliases": "\n".join(system.aliases),
        "category": system.category or "",
        "origin": system.origin_code or "",
        "parent": parent_designation(system) or "",
    }
    return _system_page(request, db, system, values, {})


@router.post("/systems/{system_id:int}/edit", response_class=HTMLResponse)
def save_system(
    request: Request, system_id: int, values: Posted, db: SessionDep, principal: AnalystDep
) -> Response:
    """Save the system, or re-render with messages (422)."""
    system = _system_or_404(db, system_id)
    try:
        data = SystemEdit(
            designation=values.get("designation", ""),
            aliases=_aliases(values.get("aliases", "")),
            category=values.get("category") or None,
            origin=values.get("origin") or None,
            parent=values.get("parent") or None,
        )
        update_system(db, system.id, data, principal.user)
        db.commit()
    except ValidationError as exc:
        db.rollback()
        return _system_page(request, db, system, values, _errors(exc), 422)
    except ReferenceConflict as exc:
        db.rollback()
        return _system_page(request, db, _system_or_404(db, system_id), values, {exc.field: exc.message}, 422)
    except Exception:
        db.rollback()
        raise
    return RedirectResponse(f"/systems/{system_id}/edit?saved=1", status_code=303)


# ---- merges -------------------------------------------------------------------------------------------

MERGE_KINDS = {
    "actor": {"plural": "actors", "find": find_actor, "count": actor_event_count, "merge": merge_actors},
    "system": {"plural": "systems", "find": find_system, "count": system_event_count, "merge": merge_systems},
}


def _merge_page(
    request: Request,
    kind: str,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    preview: dict[str, object] | None = None,
    status: int = 200,
) -> HTMLResponse:
    ctx = {"kind": kind, "plural": MERGE_KINDS[kind]["plural"], "values": values, "errors": errors or {}}
    ctx["preview"] = preview
    return render(request, "reference_edit/merge.html", ctx, status_code=status)


def _merge(request: Request, kind: str, values: dict[str, str], db: Session, principal: AdminDep) -> Response:
    spec = MERGE_KINDS[kind]
    errors: dict[str, str] = {}
    found: dict[str, object] = {}
    for side in ("keep", "drop"):
        name = values.get(side, "").strip()
        entry = spec["find"](db, name) if name else None  # type: ignore[operator]
        if not name:
            errors[side] = f"Enter the {kind} to {'keep' if side == 'keep' else 'merge into it'}."
        elif entry is None:
            errors[side] = f"No {kind} is called “{name}” (by name or alias); pick one from the suggestions."
        else:
            found[side] = entry
    if not errors and found["keep"].id == found["drop"].id:  # type: ignore[attr-defined]
        errors["drop"] = f"Both names point at the same {kind}; nothing to merge."
    if errors:
        return _merge_page(request, kind, values, errors, status=422)
    keep, drop = found["keep"], found["drop"]
    if not values.get("confirm"):
        preview = {
            "keep": keep,
            "drop": drop,
            "keep_events": spec["count"](db, keep.id),  # type: ignore[attr-defined, operator]
            "drop_events": spec["count"](db, drop.id),  # type: ignore[attr-defined, operator]
        }
        return _merge_page(request, kind, values, preview=preview)
    try:
        spec["merge"](db, keep.id, drop.id, principal.user)  # type: ignore[attr-defined, operator]
        db.commit()
    except MergeError as exc:
        db.rollback()
        return _merge_page(request, kind, values, {"drop": str(exc)}, status=422)
    except LookupError:  # a merge at the same time took one of the two away
        db.rollback()
        gone = f"One of these {spec['plural']} was merged or deleted meanwhile; enter the two names again."
        return _merge_page(request, kind, values, {"drop": gone}, status=409)
    except Exception:
        db.rollback()
        raise
    return RedirectResponse(f"/{spec['plural']}/{keep.id}/edit?merged=1", status_code=303)  # type: ignore[attr-defined]


# The pick page is a GET under /admin: a GET route never ends in an action verb (see tests/test_csrf.py).
@router.get("/admin/merge/actors", response_class=HTMLResponse)
def merge_actors_form(request: Request, principal: AdminDep, keep: str = "", drop: str = "") -> HTMLResponse:
    """Pick two actors: the one to keep and the one merged into it."""
    return _merge_page(request, "actor", {"keep": keep[:200], "drop": drop[:200]})


@router.post("/actors/merge", response_class=HTMLResponse)
def merge_actors_submit(request: Request, values: Posted, db: SessionDep, principal: AdminDep) -> Response:
    """Preview the merge, then (confirmed) move every link over and keep the old name as an alias."""
    return _merge(request, "actor", values, db, principal)


@router.get("/admin/merge/systems", response_class=HTMLResponse)
def merge_systems_form(request: Request, principal: AdminDep, keep: str = "", drop: str = "") -> HTMLResponse:
    """Pick two systems: the one to keep and the one merged into it."""
    return _merge_page(request, "system", {"keep": keep[:200], "drop": drop[:200]})


@router.post("/systems/merge", response_class=HTMLResponse)
def merge_systems_submit(request: Request, values: Posted, db: SessionDep, principal: AdminDep) -> Response:
    """Preview the merge, then (confirmed) move every link over and keep the old designation as an alias."""
    return _merge(request, "system", values, db, principal)
