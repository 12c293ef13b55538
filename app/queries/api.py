"""Reads behind the JSON API's reference endpoints: paged, searchable lists and single entries with counts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.domain.textkeys import fold
from app.models import Actor, Country, Event, EventActor, EventCountry, EventSystem, System
from app.queries.reference import _key_matches


def _count(link: Any, column: Any, key: Any) -> ColumnElement[int]:
    """Visible events linked to the row (one correlated count, cheap for a page)."""
    return (
        select(func.count(func.distinct(link.event_id)))
        .join(Event, Event.id == link.event_id)
        .where(column == key, Event.deleted_at.is_(None))
        .scalar_subquery()
    )


def _page(session: Session, stmt: Select[Any, Any], limit: int, offset: int) -> tuple[list[Any], bool]:
    rows = list(session.execute(stmt.limit(limit + 1).offset(offset)))
    return rows[:limit], len(rows) > limit


def actors_page(session: Session, q: str, limit: int, offset: int) -> tuple[list[tuple[Actor, int]], bool]:
    """Actors by name (name or alias containing `q`), each with its event count; and whether more follow."""
    stmt = select(Actor, _count(EventActor, EventActor.actor_id, Actor.id)).order_by(Actor.name, Actor.id)
    if fold(q):
        stmt = stmt.where(_key_matches("actors.match_keys", fold(q)))
    rows, more = _page(session, stmt, limit, offset)
    return [(r[0], int(r[1])) for r in rows], more


def actor_with_count(session: Session, actor_id: int) -> tuple[Actor, int] | None:
    """One actor and its event count."""
    row = session.execute(
        select(Actor, _count(EventActor, EventActor.actor_id, Actor.id)).where(Actor.id == actor_id)
    ).first()
    return (row[0], int(row[1])) if row else None


def _system_columns() -> Select[Any]:
    """A system, its event count and the designation of its family (parent), in one row."""
    parent = aliased(System)
    family = select(parent.designation).where(parent.id == System.parent_id).scalar_subquery()
    return select(System, _count(EventSystem, EventSystem.system_id, System.id), family)


def systems_page(
    session: Session, q: str, limit: int, offset: int
) -> tuple[list[tuple[System, int, str | None]], bool]:
    """Systems by designation (designation or alias containing `q`), with event counts and parents."""
    stmt = _system_columns().order_by(System.designation, System.id)
    if fold(q):
        stmt = stmt.where(_key_matches("systems.match_keys", fold(q)))
    rows, more = _page(session, stmt, limit, offset)
    return [(r[0], int(r[1]), r[2]) for r in rows], more


def system_with_count(session: Session, system_id: int) -> tuple[System, int, str | None] | None:
    """One system, its event count and its parent's designation."""
    row = session.execute(_system_columns().where(System.id == system_id)).first()
    return (row[0], int(row[1]), row[2]) if row else None


def countries_page(
    session: Session, q: str, limit: int, offset: int
) -> tuple[list[tuple[Country, int]], bool]:
    """Countries by name (code or name containing `q`, case-insensitive), with event counts."""
    stmt = select(Country, _count(EventCountry, EventCountry.country_code, Country.code))
    needle = q.strip()
    if needle:
        pattern = "%" + needle.replace("%", "").replace("_", "") + "%"
        exact = Country.code == needle.upper()
        # The country whose code was typed comes first ("RUS" before Belarus).
        stmt = stmt.where(or_(Country.name.ilike(pattern), exact)).order_by(case((exact, 0), else_=1))
    stmt = stmt.order_by(Country.name, Country.code)
    rows, more = _page(session, stmt, limit, offset)
    return [(r[0], int(r[1])) for r in rows], more


def country_with_count(session: Session, code: str) -> tuple[Country, int] | None:
    """One country and its event count."""
    row = session.execute(
        select(Country, _count(EventCountry, EventCountry.country_code, Country.code)).where(
            Country.code == code
        )
    ).first()
    return (row[0], int(row[1])) if row else None


def event_id_for_client_token(session: Session, token: uuid.UUID) -> int | None:
    """The event a client token already created, if any (a retried create)."""
    return session.scalar(select(Event.id).where(Event.client_token == token))


def event_exists(session: Session, event_id: int) -> bool:
    """True when a visible event has this id."""
    return bool(session.scalar(select(exists().where(Event.id == event_id, Event.deleted_at.is_(None)))))
