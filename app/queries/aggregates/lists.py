"""Reference lists with event counts: actors, systems and countries (visible events only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.countries import country_name
from app.domain.textkeys import fold
from app.models import Actor, System
from app.queries.aggregates import facts
from app.queries.reference import _key_matches

# A list page shows at most this many rows; the search box narrows it.
LIST_LIMIT = 500


@dataclass(frozen=True)
class ActorRow:
    """An actor and how many events name it."""

    id: int
    name: str
    aliases: list[str]
    type: str
    country_code: str | None
    title: str | None
    events: int


@dataclass(frozen=True)
class SystemRow:
    """A catalogued system and how many events name it."""

    id: int
    designation: str
    aliases: list[str]
    category: str | None
    origin_code: str | None
    events: int


@dataclass(frozen=True)
class CountryRow:
    """A country and its events by role."""

    code: str
    name: str
    supplier: int
    recipient: int
    target: int
    intermediary: int
    events: int


def _counted(session: Session) -> dict[str, Any]:
    """Per-entity event counts from the facts copy (milliseconds; tests/sql_oracle.py counts in SQL)."""
    copy = facts.current(session)
    return {"countries": copy.countries, **facts.reference_counts(copy)}


def _count_of(counts: Any, ident: int) -> int:
    return int(counts[ident]) if ident < len(counts) else 0


def actor_list(session: Session, query: str = "", limit: int = LIST_LIMIT) -> list[ActorRow]:
    """Actors with their event counts, busiest first; `query` matches names and aliases."""
    counted = _counted(session)
    found = (
        select(Actor).where(_key_matches("actors.match_keys", fold(query))) if fold(query) else select(Actor)
    )
    rows = [
        ActorRow(
            a.id, a.name, list(a.aliases), a.type, a.country_code, a.title, _count_of(counted["actor"], a.id)
        )
        for a in session.scalars(found)
    ]
    return sorted(rows, key=lambda r: (-r.events, r.name))[:limit]


def system_list(session: Session, query: str = "", limit: int = LIST_LIMIT) -> list[SystemRow]:
    """Systems with their event counts, busiest first; `query` matches designations and aliases."""
    counted = _counted(session)
    found = select(System)
    if fold(query):
        found = found.where(_key_matches("systems.match_keys", fold(query)))
    rows = [
        SystemRow(
            s.id,
            s.designation,
            list(s.aliases),
            s.category,
            s.origin_code,
            _count_of(counted["system"], s.id),
        )
        for s in session.scalars(found)
    ]
    return sorted(rows, key=lambda r: (-r.events, r.designation))[:limit]


def country_list(session: Session, query: str = "") -> list[CountryRow]:
    """Countries named by at least one visible event, with counts per role, busiest first."""
    counted = _counted(session)
    sup, rec, tgt, mid, total = (
        counted[key] for key in ("supplier", "recipient", "target", "intermediary", "country")
    )
    rows = [
        CountryRow(
            code, country_name(code), int(sup[i]), int(rec[i]), int(tgt[i]), int(mid[i]), int(total[i])
        )
        for i, code in enumerate(counted["countries"])
        if total[i]
    ]
    return _matching(rows, query)


def _matching(rows: list[CountryRow], query: str) -> list[CountryRow]:
    """Rows whose name or code the search box names, busiest first."""
    needle = fold(query)
    if needle:
        rows = [r for r in rows if needle in fold(r.name) or needle == r.code.casefold()]
    return sorted(rows, key=lambda r: (-r.events, r.name))
