"""Saved views: the Views menu and page, saving the filter on screen, opening, renaming, sharing, deleting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app.auth.deps import Forbidden, LoginRequired, Principal, ViewerDep
from app.db import SessionDep
from app.filters import EventFilter, page_filter, pairs_of
from app.models import SavedView, User
from app.queries.aggregates.cache import cached, data_version
from app.queries.events import count_events
from app.queries.watch import NewCount, new_since, written_since
from app.services import saved_views as views
from app.templating import render

router = APIRouter()
FormText = Annotated[str, Form(max_length=4000)]


@dataclass(frozen=True)
class ViewLine:
    """A view as the menu and the page show it: its current count and how many events are new since."""

    view: SavedView
    url: str
    count: int
    new: NewCount
    since: datetime | None
    editable: bool
    chips: list[dict[str, str]]

    @property
    def new_label(self) -> str:
        """'3 new', '40+ new' (only the newest writes were read), or '' when nothing changed."""
        if not self.new.count:
            return ""
        return f"{self.new.count:,}{'+' if self.new.partial else ''} new"


def signed_in_user(principal: Principal) -> User:
    """Views belong to a signed-in person (not an anonymous reader, not an API token)."""
    if principal.user is None:
        raise LoginRequired()  # PUBLIC_READ lets anonymous visitors read, but they own no views
    if principal.via_token:
        raise Forbidden("Saved views belong to a signed-in user; log in on the web page.")
    return principal.user


def view_url(view: SavedView) -> str:
    """The page and filter a view opens."""
    return f"{view.path}?{view.query}" if view.query else view.path


def view_filter(db: Session, view: SavedView) -> EventFilter:
    """The view's filter under the people's policy: what its page shows (values since deleted left out)."""
    return page_filter(db, pairs_of(parse_qsl(view.query)))[0]


def view_lines(db: Session, user: User) -> list[ViewLine]:
    """Every view the user sees, counted on the facts copy, with its events new since the user opened it."""
    seen = views.visible_views(db, user)
    opened = views.last_opened(db, user, seen)
    version = data_version(db)
    # Never opened (a view a colleague shared): new since it was saved or last pointed elsewhere.
    moments = {view.id: opened.get(view.id, view.updated_at) for view in seen}
    # One read of the audit log for every view: the writes since the oldest of their moments.
    writes = written_since(db, min(moments.values())) if moments else None
    out = []
    for view in seen:
        f = view_filter(db, view)
        query = f.query_string()
        count: int = cached(("count", query, version), partial(count_events, db, f))
        since = moments[view.id]
        new = new_since(db, f, since, writes)
        out.append(ViewLine(view, view_url(view), count, new, since, views.can_edit(user, view), f.chips()))
    return out


def _page(request: Request, db: Session, user: User, status: int = 200, **extra: Any) -> HTMLResponse:
    context: dict[str, Any] = {"lines": view_lines(db, user), "errors": {}, "done": None}
    context.update(extra)
    return render(request, "views/index.html", context, status_code=status)


@router.get("/views", response_class=HTMLResponse)
def views_page(request: Request, db: SessionDep, principal: ViewerDep, done: str | None = None) -> Response:
    """Your views and the desk's shared ones, with counts, new events and what you may change."""
    if principal.user is None:
        return RedirectResponse("/login?next=/views", status_code=303)
    return _page(request, db, signed_in_user(principal), done=done)


@router.get("/views/menu", response_class=HTMLResponse)
def views_menu(request: Request, db: SessionDep, principal: ViewerDep) -> Response:
    """The top bar's Views menu (fetched when it is opened)."""
    if principal.user is None:
        return render(request, "views/_menu.html", {"lines": [], "anonymous": True})
    return render(request, "views/_menu.html", {"lines": view_lines(db, signed_in_user(principal))})


@router.get("/views/save", response_class=HTMLResponse)
def save_form(request: Request, db: SessionDep, principal: ViewerDep, path: str = "/") -> Response:
    """Save the filter of the query string, or point one of your views at it."""
    user = signed_in_user(principal)
    query = _query_of(request)
    return _save_page(request, db, user, path, query)


def _query_of(request: Request) -> str:
    """The filter part of this request's query string (path and other keys left out)."""
    return views.canonical_query(str(request.url.query))


def _save_page(
    request: Request,
    db: Session,
    user: User,
    path: str,
    query: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    name: str = "",
    shared: bool = False,
) -> HTMLResponse:
    f = EventFilter.from_pairs(parse_qsl(query))
    mine = [v for v in views.visible_views(db, user) if views.can_edit(user, v)]
    context = {
        "path": path if path in ("/", "/dyads") else "/",
        "query": query,
        "chips": f.chips(),
        "mine": mine,
        "errors": errors or {},
        "name": name,
        "shared": shared,
    }
    return render(request, "views/save.html", context, status_code=status)


@router.post("/views", response_class=HTMLResponse)
def view_create(
    request: Request,
    db: SessionDep,
    principal: ViewerDep,
    name: FormText = "",
    path: FormText = "/",
    query: FormText = "",
    shared: FormText = "",
) -> Response:
    """Save the filter on screen under a name (private unless shared is ticked)."""
    user = signed_in_user(principal)
    try:
        view = views.create_view(db, user, name, path, query, shared == "1")
    except views.ViewError as exc:
        db.rollback()
        errors = {exc.field: exc.message}
        return _save_page(
            request, db, user, path, views.canonical_query(query), 422, errors, name, shared == "1"
        )
    db.commit()
    return RedirectResponse(f"/views?done=saved#view-{view.id}", status_code=303)


@router.get("/views/{view_id:int}")
def view_open(view_id: int, db: SessionDep, principal: ViewerDep) -> Response:
    """Open a view: note the time (its "new" count starts again) and go to its page and filter."""
    user = signed_in_user(principal)
    view = _visible(db, user, view_id)
    views.mark_opened(db, user, view)
    db.commit()
    return RedirectResponse(view_url(view), status_code=303)


def _visible(db: Session, user: User, view_id: int) -> SavedView:
    try:
        return views.visible_view(db, user, view_id)
    except views.ViewNotFound:
        raise HTTPException(404, "No saved view with this number that you can see.") from None


def _change(request: Request, db: Session, user: User, view_id: int, action: Any, done: str) -> Response:
    """Run one change of a view; a refused one re-renders the page with the message beside the view."""
    _visible(db, user, view_id)
    try:
        action()
    except views.NotYours:
        raise Forbidden("Only the owner of this view (or an admin) may change it.") from None
    except views.ViewError as exc:
        db.rollback()
        return _page(request, db, user, 422, errors={view_id: exc.message})
    db.commit()
    return RedirectResponse(f"/views?done={done}#view-{view_id}", status_code=303)


@router.post("/views/{view_id:int}/rename", response_class=HTMLResponse)
def view_rename(
    request: Request, view_id: int, db: SessionDep, principal: ViewerDep, name: FormText = ""
) -> Response:
    """Rename a view."""
    user = signed_in_user(principal)
    return _change(request, db, user, view_id, lambda: views.rename_view(db, user, view_id, name), "renamed")


@router.post("/views/{view_id:int}/share", response_class=HTMLResponse)
def view_share(
    request: Request, view_id: int, db: SessionDep, principal: ViewerDep, shared: FormText = ""
) -> Response:
    """Share a view with the desk (shared=1) or make it private."""
    user = signed_in_user(principal)
    return _change(
        request, db, user, view_id, lambda: views.share_view(db, user, view_id, shared == "1"), "shared"
    )


@router.post("/views/{view_id:int}/update", response_class=HTMLResponse)
def view_update(
    request: Request,
    view_id: int,
    db: SessionDep,
    principal: ViewerDep,
    path: FormText = "/",
    query: FormText = "",
) -> Response:
    """Point a view at the filter on screen."""
    user = signed_in_user(principal)
    return _change(
        request,
        db,
        user,
        view_id,
        lambda: views.update_view_filter(db, user, view_id, path, query),
        "updated",
    )


@router.post("/views/{view_id:int}/delete", response_class=HTMLResponse)
def view_delete(request: Request, view_id: int, db: SessionDep, principal: ViewerDep) -> Response:
    """Delete a view (for everyone it was shared with too)."""
    user = signed_in_user(principal)
    return _change(request, db, user, view_id, lambda: views.delete_view(db, user, view_id), "deleted")
