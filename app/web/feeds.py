"""Atom feeds of any filter or saved view, opened with a feed token; and the page that makes their address.

Policy: a feed applies its filter with the people's policy (`page_filter`), like the page it follows: a
saved view naming an actor since deleted keeps its feed working, with the value left out, and the feed's
subtitle says so (a reader shows no 422, and a feed that broke after a merge would go silent). Only a
token can open a feed; a malformed, unknown or revoked one, a disabled account, or a view the token's
user may not see, all get the same 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from feedgen.feed import FeedGenerator
from markupsafe import escape
from sqlalchemy.orm import Session

from app.auth.deps import ViewerDep, client_ip
from app.auth.feed_tokens import create_feed_token, feed_user
from app.config import get_settings
from app.db import SessionDep
from app.domain.countries import country_name
from app.domain.dates import format_span
from app.domain.vocab import STAGES
from app.filters import EventFilter, FilterError, page_filter, pairs_of
from app.models import SavedView, User
from app.queries.watch import FeedItem, feed_items
from app.services import saved_views as views
from app.services.audit import security_event
from app.templating import render
from app.web.views import signed_in_user, view_url

router = APIRouter()
ATOM = "application/atom+xml; charset=utf-8"
GONE = "There is no feed at this address: the feed token is unknown or was revoked."
CHANGE_WORDS = {"status": "status", "kind": "kind", "stage_override": "stage set by hand"}


def _reader(db: Session, token: str) -> User:
    user = feed_user(db, token)
    if user is None:
        raise HTTPException(404, GONE)
    return user


def _what_changed(item: FeedItem) -> str:
    """'status claimed → confirmed; kind offer → transfer', or what kind of write it was."""
    if item.action == "create":
        return "new event"
    if item.action == "restore":
        return "restored"
    parts = [
        f"{CHANGE_WORDS[k]} {item.changes[k].get('before') or '—'} → {item.changes[k].get('after') or '—'}"
        for k in CHANGE_WORDS
        if k in item.changes
    ]
    return "; ".join(parts) or "changed"


def _entry_html(item: FeedItem, base: str) -> str:
    """The entry's content: what changed, the event's kind, status, stage, date, countries and summary."""
    e = item.event
    countries = ", ".join(f"{c.role} {country_name(c.country_code)}" for c in e.countries)
    lines = [
        f"<p><strong>{escape(_what_changed(item).capitalize())}</strong> by {escape(item.username)}.</p>",
        f"<p>{escape(e.kind)} · {escape(e.status)} · stage {e.stage} {escape(STAGES.get(e.stage, ''))} · "
        f"{escape(format_span(e.date_start, e.date_precision, e.date_end, e.date_end_precision))}</p>",
    ]
    if countries:
        lines.append(f"<p>{escape(countries)}</p>")
    if e.summary:
        lines.append(f"<p>{escape(e.summary)}</p>")
    lines.append(f'<p><a href="{escape(base)}/events/{e.id}">Event #{e.id} in Signalboard</a></p>')
    return "\n".join(lines)


def atom_feed(
    items: list[FeedItem], base: str, title: str, feed_id: str, self_url: str, page_url: str, note: str
) -> bytes:
    """A valid Atom 1.0 document: one entry per event, dated by the write that brought it to the top.

    An entry's id names the event and that write, so an event whose status or ladder stage changes
    comes back as a new entry (feed readers rarely show an updated entry again).
    """
    fg = FeedGenerator()
    fg.id(feed_id)
    fg.title(title)
    fg.author({"name": "Signalboard"})
    fg.link(href=page_url, rel="alternate", type="text/html")
    fg.link(href=self_url, rel="self", type="application/atom+xml")
    fg.subtitle(note or "Newest events first; an event comes back when its status or ladder stage changes.")
    fg.generator("Signalboard")
    fg.updated(items[0].at if items else datetime(2000, 1, 1, tzinfo=UTC))
    for item in items:
        e = item.event
        entry = fg.add_entry(order="append")
        entry.id(f"{base}/events/{e.id}#write-{item.audit_id}")
        prefix = "" if item.action == "create" else f"[{_what_changed(item)}] "
        entry.title(prefix + e.title)
        entry.link(href=f"{base}/events/{e.id}", rel="alternate", type="text/html")
        entry.updated(item.at)
        entry.published(e.created_at)
        entry.author({"name": item.username})
        entry.category(term=e.kind, label=e.kind)
        entry.content(_entry_html(item, base), type="html")
    return fg.atom_str(pretty=True)


def _note(errors: list[FilterError]) -> str:
    if not errors:
        return ""
    return "Left out, not understood: " + "; ".join(f"{e.param}: {e.message}" for e in errors)


def _answer(
    db: Session,
    request: Request,
    f: EventFilter,
    errors: list[FilterError],
    title: str,
    feed_id: str,
    page_url: str,
) -> Response:
    base = str(request.base_url).rstrip("/")
    items = feed_items(db, f, get_settings().feed_size)
    body = atom_feed(items, base, title, feed_id, str(request.url), base + page_url, _note(errors))
    # The address holds a credential: keep shared caches from storing the answer.
    return Response(body, media_type=ATOM, headers={"Cache-Control": "private, max-age=60"})


@router.get("/feeds/{token}/events.atom")
def filter_feed(request: Request, token: str, db: SessionDep) -> Response:
    """The Atom feed of the filter in the query string (the timeline's parameters)."""
    _reader(db, token)
    f, errors = page_filter(db, request.query_params)
    query = f.query_string()
    base = str(request.base_url).rstrip("/")
    title = "Signalboard: " + (", ".join(f"{c['name']} {c['label']}" for c in f.chips()) or "all events")
    page = f"/?{query}" if query else "/"
    return _answer(db, request, f, errors, title, f"{base}{page}", page)


@router.get("/feeds/{token}/views/{view_id:int}.atom")
def view_feed(request: Request, token: str, view_id: int, db: SessionDep) -> Response:
    """The Atom feed of a saved view the token's user may see."""
    user = _reader(db, token)
    try:
        view = views.visible_view(db, user, view_id)
    except views.ViewNotFound:
        raise HTTPException(404, GONE) from None
    f, errors = page_filter(db, pairs_of(parse_qsl(view.query)))
    base = str(request.base_url).rstrip("/")
    return _answer(
        db, request, f, errors, f"Signalboard: {view.name}", f"{base}/views/{view.id}", view_url(view)
    )


# ---- making a feed's address (signed-in pages) ------------------------------------------------------


def _target(db: Session, user: User, request: Request) -> tuple[SavedView | None, str, str]:
    """What the subscribe page is about: a saved view, or a page and its filter."""
    raw = request.query_params.get("view")
    if raw:
        if not raw.isdecimal():
            raise HTTPException(404, "No saved view with this number that you can see.")
        try:
            view = views.visible_view(db, user, int(raw))
        except views.ViewNotFound:
            raise HTTPException(404, "No saved view with this number that you can see.") from None
        return view, view.path, view.query
    path = request.query_params.get("path", "/")
    return None, path if path in ("/", "/dyads") else "/", views.canonical_query(str(request.url.query))


def feed_path(token: str, view: SavedView | None, query: str) -> str:
    """A feed's address after the host: the view's, or the filter's."""
    if view is not None:
        return f"/feeds/{token}/views/{view.id}.atom"
    return f"/feeds/{token}/events.atom" + (f"?{query}" if query else "")


def _subscribe_page(request: Request, db: Session, user: User, **extra: object) -> HTMLResponse:
    view, path, query = _target(db, user, request)
    f = EventFilter.from_pairs(parse_qsl(query))
    context: dict[str, object] = {
        "view": view,
        "path": path,
        "query": query,
        "chips": f.chips(),
        "base": str(request.base_url).rstrip("/"),
        "pattern": feed_path("YOUR-FEED-TOKEN", view, query),
        "form_query": urlencode({"view": view.id})
        if view
        else urlencode([("path", path), *parse_qsl(query)]),
        "name": f"Feed: {view.name}" if view else f"Feed: {f.describe()}"[:100],
        "feed_url": None,
        "errors": {},
    }
    context.update(extra)
    return render(request, "feeds/new.html", context, status_code=422 if context["errors"] else 200)


@router.get("/feeds/new", response_class=HTMLResponse)
def subscribe(request: Request, db: SessionDep, principal: ViewerDep) -> Response:
    """How to follow this view in a feed reader: its feed address, with a token made on request."""
    return _subscribe_page(request, db, signed_in_user(principal))


@router.post("/feeds/new", response_class=HTMLResponse)
def subscribe_create(
    request: Request,
    db: SessionDep,
    principal: ViewerDep,
    name: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """Make a feed token for this view and show its full feed address once."""
    user = signed_in_user(principal)
    view, _, query = _target(db, user, request)
    name = " ".join(name.split())
    if not name or len(name) > 100:
        errors = {"name": "Give the feed token a name of 1–100 characters, e.g. the reader that will use it."}
        return _subscribe_page(request, db, user, errors=errors, name=name)
    token, raw = create_feed_token(db, user, name)
    details = {"token_id": token.id, "prefix": token.prefix}
    security_event(db, user, "feed_token_created", details, client_ip(request))
    db.commit()
    base = str(request.base_url).rstrip("/")
    return _subscribe_page(request, db, user, feed_url=base + feed_path(raw, view, query), name=name)
