"""Saved views: create, rename, share, point at another filter, delete, and note when a user opens one.

Each write is audited (entity `saved_view`). Only the owner, or an admin, may change or delete a view;
everyone signed in sees their own views and the shared ones.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.domain import clock
from app.filters import PARAMS, SINGLE_VALUED, EventFilter
from app.models import SavedView, SavedViewOpen, User
from app.models.watch import VIEW_PATHS
from app.services.audit import record

NAME_MAX = 100


class ViewError(ValueError):
    """A refused view change, with a message for the person who asked (and the field it is about)."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class ViewNotFound(LookupError):
    """No view with this id that the user may see."""


class NotYours(PermissionError):
    """Only the owner of a view (or an admin) may change it."""


def canonical_query(query: str) -> str:
    """The filter of a query string, written back in a stable order (cursor and unknown keys left out).

    Names are kept as written: an actor that is later deleted stays in the view, so opening it gives the
    timeline's message about it instead of silently showing more.
    """
    f = EventFilter.from_pairs(parse_qsl(query.lstrip("?"), keep_blank_values=False))
    # A malformed value is left out as the page leaves it out (q given twice, `to` before `from`).
    for e in f.errors:
        if e.param in SINGLE_VALUED and getattr(f, PARAMS[e.param]) is not None:
            f = f.without(e.param)
    return f.query_string()


def visible_views(db: Session, user: User) -> list[SavedView]:
    """The user's own views and the desk's shared ones, by name."""
    stmt = (
        select(SavedView)
        .where(or_(SavedView.owner_id == user.id, SavedView.shared.is_(True)))
        .order_by(func.lower(SavedView.name), SavedView.id)
    )
    return list(db.scalars(stmt))


def visible_view(db: Session, user: User, view_id: int) -> SavedView:
    """One view the user may open, or ViewNotFound (another user's private view is not found either)."""
    view = db.get(SavedView, view_id)
    if view is None or not (view.shared or view.owner_id == user.id):
        raise ViewNotFound(view_id)
    return view


def can_edit(user: User, view: SavedView) -> bool:
    """The owner and admins may rename, share, update and delete a view."""
    return view.owner_id == user.id or user.role == "admin"


def _editable(db: Session, user: User, view_id: int) -> SavedView:
    view = visible_view(db, user, view_id)
    if not can_edit(user, view):
        raise NotYours(view_id)
    return view


def _clean_name(db: Session, owner_id: int, name: str, keep: int | None = None) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise ViewError(f"Give the view a name of 1–{NAME_MAX} characters.")
    taken = db.scalar(
        select(SavedView.id).where(
            SavedView.owner_id == owner_id,
            func.lower(SavedView.name) == name.lower(),
            SavedView.id != (keep or 0),
        )
    )
    if taken:
        raise ViewError(f"There is already a view named “{name}”; choose another name or update that one.")
    return name


def _clean_path(path: str) -> str:
    if path not in VIEW_PATHS:
        raise ViewError("A view is of the timeline (/) or the dyads page (/dyads).", field="path")
    return path


def _snapshot(view: SavedView) -> dict[str, Any]:
    return {"name": view.name, "path": view.path, "query": view.query, "shared": view.shared}


def _audit(db: Session, user: User, action: str, view: SavedView, before: dict[str, Any]) -> None:
    after = _snapshot(view) if action != "delete" else {}
    changes = {
        k: {"before": before.get(k), "after": after.get(k)}
        for k in dict.fromkeys([*before, *after])
        if before.get(k) != after.get(k)
    }
    record(db, user, action, "saved_view", view.id, changes)


def create_view(db: Session, user: User, name: str, path: str, query: str, shared: bool) -> SavedView:
    """Save a filter under a name; the owner counts as having opened it now."""
    view = SavedView(
        owner_id=user.id,
        name=_clean_name(db, user.id, name),
        path=_clean_path(path),
        query=canonical_query(query),
        shared=shared,
    )
    db.add(view)
    db.flush()
    mark_opened(db, user, view)
    _audit(db, user, "create", view, {})
    return view


def rename_view(db: Session, user: User, view_id: int, name: str) -> SavedView:
    """Give a view a new name (unique among its owner's views)."""
    view = _editable(db, user, view_id)
    before = _snapshot(view)
    view.name = _clean_name(db, view.owner_id, name, keep=view.id)
    return _updated(db, user, view, before)


def share_view(db: Session, user: User, view_id: int, shared: bool) -> SavedView:
    """Share a view with the desk, or make it private again."""
    view = _editable(db, user, view_id)
    before = _snapshot(view)
    view.shared = shared
    return _updated(db, user, view, before)


def update_view_filter(db: Session, user: User, view_id: int, path: str, query: str) -> SavedView:
    """Point a view at another filter (the one on screen)."""
    view = _editable(db, user, view_id)
    before = _snapshot(view)
    view.path = _clean_path(path)
    view.query = canonical_query(query)
    return _updated(db, user, view, before)


def _updated(db: Session, user: User, view: SavedView, before: dict[str, Any]) -> SavedView:
    if _snapshot(view) != before:
        view.updated_at = clock.utcnow()
        db.flush()
        _audit(db, user, "update", view, before)
    return view


def delete_view(db: Session, user: User, view_id: int) -> None:
    """Delete a view (for everyone it was shared with too)."""
    view = _editable(db, user, view_id)
    before = _snapshot(view)
    _audit(db, user, "delete", view, before)
    db.delete(view)
    db.flush()


def mark_opened(db: Session, user: User, view: SavedView) -> None:
    """Note that the user opened the view now: its "new" count starts again from zero."""
    now = clock.utcnow()
    stmt = insert(SavedViewOpen).values(view_id=view.id, user_id=user.id, opened_at=now)
    db.execute(
        stmt.on_conflict_do_update(
            index_elements=[SavedViewOpen.view_id, SavedViewOpen.user_id], set_={"opened_at": now}
        )
    )


def last_opened(db: Session, user: User, views: list[SavedView]) -> dict[int, Any]:
    """When the user last opened each view (views never opened are absent)."""
    if not views:
        return {}
    rows = db.execute(
        select(SavedViewOpen.view_id, SavedViewOpen.opened_at).where(
            SavedViewOpen.user_id == user.id, SavedViewOpen.view_id.in_([v.id for v in views])
        )
    )
    return {view_id: at for view_id, at in rows}
