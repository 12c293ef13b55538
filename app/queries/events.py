"""The filter as SQL conditions (export, API list, the copy's id queries), timeline pages, single events."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, exists, func, select
from sqlalchemy.orm import Session

from app.domain.textkeys import fold
from app.filters import EventFilter, FilterError
from app.models import Actor, Event, EventActor, EventCountry, EventSystem, Source, System
from app.queries.due import due_condition
from app.queries.rows import TimelineRow, timeline_rows
from app.services.events import event_options

R = TypeVar("R", TimelineRow, Event)


def _country_exists(codes: tuple[str, ...], role: str | None) -> ColumnElement[bool]:
    cond = and_(EventCountry.event_id == Event.id, EventCountry.country_code.in_(codes))
    if role is not None:
        cond = and_(cond, EventCountry.role == role)
    return exists().where(cond)


def conditions(f: EventFilter) -> list[ColumnElement[bool]]:
    """WHERE clauses for a filter (deleted events always excluded)."""
    where: list[ColumnElement[bool]] = [Event.deleted_at.is_(None)]
    if f.q:
        where.append(Event.search_vector.op("@@")(func.websearch_to_tsquery("english", f.q)))
    if f.country:
        where.append(_country_exists(f.country, None))
    for role in ("supplier", "recipient", "target"):
        codes = getattr(f, role)
        if codes:
            where.append(_country_exists(codes, role))
    if f.actor:
        keys = [fold(a) for a in f.actor]
        where.append(
            exists().where(
                EventActor.event_id == Event.id,
                EventActor.actor_id.in_(select(Actor.id).where(Actor.match_keys.overlap(keys))),
            )
        )
    if f.system:
        keys = [fold(s) for s in f.system]
        where.append(
            exists().where(
                EventSystem.event_id == Event.id,
                # families: the ids page_filter/strict_filter resolved (app/queries/families.py), if any
                EventSystem.system_id.in_(
                    select(System.id).where(System.match_keys.overlap(keys))
                    if f.system_family is None
                    else f.system_family
                ),
            )
        )
    if f.kind:
        where.append(Event.kind.in_(f.kind))
    if f.status:
        where.append(Event.status.in_(f.status))
    if f.stage_min is not None:
        where.append(Event.stage >= f.stage_min)
    # A month-precision event matches any range that overlaps its month.
    if f.date_from is not None:
        where.append(Event.period_end >= f.date_from.start)
    if f.date_to is not None:
        where.append(Event.date_start <= f.date_to.end)
    if f.source:
        where.append(
            exists().where(
                Source.event_id == Event.id, func.lower(Source.publisher).in_([s.lower() for s in f.source])
            )
        )
    if f.reliability_max:
        where.append(exists().where(Source.event_id == Event.id, Source.reliability <= f.reliability_max))
    if f.tag:
        where.append(Event.tags.overlap(list(f.tag)))
    if f.origins_min is not None:
        where.append(Event.origin_count >= f.origins_min)
    if f.origins_max is not None:
        where.append(Event.origin_count <= f.origins_max)
    if f.likelihood:
        where.append(Event.likelihood.in_(f.likelihood))
    if f.confidence:
        where.append(Event.confidence.in_(f.confidence))
    if f.due:
        where.append(due_condition())
    return where


def matching_ids(f: EventFilter) -> Select[int]:
    """SELECT id FROM events matching the filter: the building block of facets, charts and dyads."""
    return select(Event.id).where(*conditions(f))


def event_select(f: EventFilter) -> Select[Event]:
    """Events matching the filter in timeline order (newest first, id breaking ties)."""
    return select(Event).where(*conditions(f)).order_by(Event.date_start.desc(), Event.id.desc())


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the last row of the previous page."""

    date_start: date
    id: int

    def encode(self) -> str:
        """Opaque URL-safe text."""
        return (
            base64.urlsafe_b64encode(f"{self.date_start.isoformat()}|{self.id}".encode()).decode().rstrip("=")
        )

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor, raising ValueError when it was tampered with."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            d, i = raw.split("|")
            return cls(date.fromisoformat(d), int(i))
        except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise ValueError(
                f"the page cursor is not valid (“{shown}”); start again from the first page"
            ) from exc


@dataclass
class Page(Generic[R]):
    """One page of events (timeline rows or whole events) and the cursor of the next (None on the last)."""

    events: list[R]
    next_cursor: str | None


def page_ids(session: Session, f: EventFilter, cursor: Cursor | None, limit: int) -> list[int]:
    """The ids of a keyset page, one more than `limit` when there is a next page.

    The in-memory copy orders by (date_start, id) and cuts at the cursor for any filter in milliseconds;
    the conditions it does not hold (full text, publisher, reliability, tags) come from PostgreSQL as one
    id query through their indexes, so a rare or empty tag costs no walk of the date index.
    """
    from app.queries.aggregates import facts  # facts builds on this module's conditions
    from app.queries.aggregates.cache import cached, data_version

    before = (cursor.date_start, cursor.id) if cursor is not None else None
    # Kept per filter, position and data version like the aggregates: a repeated view costs its rows only.
    key = ("page", f.query_string(), f.system_family, before, limit, data_version(session))  # families
    return cached(key, lambda: facts.selection(session, f).page_ids(before, limit + 1))


def _paged(rows: list[R], limit: int) -> Page[R]:
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return Page(rows, Cursor(last.date_start, last.id).encode() if last is not None else None)


def timeline_page(
    session: Session, f: EventFilter, cursor: Cursor | None = None, limit: int = 50
) -> Page[TimelineRow]:
    """A keyset page of timeline rows: ids from `page_ids`, then their rows in one query (queries/rows.py)."""
    return _paged(timeline_rows(session, page_ids(session, f, cursor, limit)), limit)


def events_page(
    session: Session, f: EventFilter, cursor: Cursor | None = None, limit: int = 50
) -> Page[Event]:
    """A keyset page of whole events with their links (the API's list), in timeline order."""
    ids = page_ids(session, f, cursor, limit)
    found = {e.id: e for e in session.scalars(event_by_ids(ids)).unique()}
    return _paged([found[i] for i in ids if i in found], limit)


def event_by_ids(ids: list[int]) -> Select[Event]:
    """Visible events with the given ids, their links loaded (order is the caller's)."""
    return select(Event).where(Event.id.in_(ids), Event.deleted_at.is_(None)).options(*event_options())


def drop_unknown_names(session: Session, f: EventFilter) -> tuple[EventFilter, list[FilterError]]:
    """Drop actor and system values that name nothing (by name or alias), each with a message.

    One query per parameter in use, none otherwise, so an unknown name reads as a message instead of a
    silent empty page (people) or a 422 (machines): see `app.filters.page_filter`.
    """
    errors: list[FilterError] = []
    kept: dict[str, Any] = {}
    for param, model, noun in (("actor", Actor, "actor"), ("system", System, "system")):
        values: tuple[str, ...] = getattr(f, param)
        if not values:
            continue
        keys = [fold(v) for v in values]
        known = set(
            session.scalars(select(func.unnest(model.match_keys)).where(model.match_keys.overlap(keys)))
        )
        kept[param] = tuple(v for v in values if fold(v) in known)
        errors += [
            FilterError(param, f"no {noun} is called “{v}”; pick a name from the suggestions", value=v)
            for v in values
            if fold(v) not in known
        ]
    return (replace(f, **kept) if kept else f), errors


def count_events(session: Session, f: EventFilter) -> int:
    """How many events match the filter (counted on the in-memory copy)."""
    from app.queries.aggregates import facts  # facts builds on this module's conditions

    return facts.selection(session, f).total()


def event_or_none(session: Session, event_id: int) -> Event | None:
    """A visible event with its links, or None."""
    stmt = select(Event).where(Event.id == event_id, Event.deleted_at.is_(None)).options(*event_options())
    return session.scalars(stmt).unique().one_or_none()
