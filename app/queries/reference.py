"""Lookups over reference data: autocomplete suggestions and "did you mean" for actors, systems, countries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

from sqlalchemy import TextClause, func, select, text
from sqlalchemy.orm import Session

from app.countries import names_by_code
from app.filters import COUNTRY_PARAMS, FilterError
from app.models import Actor, System
from app.names import NameIndex
from app.textkeys import fold
from app.vocab import KINDS, STATUSES

# How many "did you mean" values a refused filter value offers.
DID_YOU_MEAN = 3


@dataclass(frozen=True)
class Suggestion:
    """One autocomplete option: the value to fill in and a hint shown beside it."""

    value: str
    hint: str


def _key_matches(column: str, needle: str) -> TextClause:
    """True when any folded name/alias contains the needle (names and aliases both find an entry)."""
    return text(f"EXISTS (SELECT 1 FROM unnest({column}) AS k WHERE k LIKE :needle)").bindparams(
        needle=f"%{needle.replace('%', '').replace('_', '')}%"
    )


def suggest_actors(session: Session, query: str, limit: int = 10) -> list[Suggestion]:
    """Actors whose name or alias contains the query (case- and accent-insensitive)."""
    needle = fold(query)
    if not needle:
        return []
    stmt = (
        select(Actor.name, Actor.title, Actor.country_code, Actor.aliases)
        .where(_key_matches("actors.match_keys", needle))
        .order_by(func.length(Actor.name), Actor.name)
        .limit(limit)
    )
    out = []
    for name, title, country, aliases in session.execute(stmt):
        alias = next((a for a in aliases if needle in fold(a)), None)
        hint = " · ".join(
            x
            for x in (title, country, f"also “{alias}”" if alias and needle not in fold(name) else None)
            if x
        )
        out.append(Suggestion(name, hint))
    return out


def suggest_systems(session: Session, query: str, limit: int = 10) -> list[Suggestion]:
    """Systems whose designation or alias contains the query."""
    needle = fold(query)
    if not needle:
        return []
    stmt = (
        select(System.designation, System.category, System.origin_code)
        .where(_key_matches("systems.match_keys", needle))
        .order_by(func.length(System.designation), System.designation)
        .limit(limit)
    )
    return [
        Suggestion(d, " · ".join(x for x in (category, origin) if x))
        for d, category, origin in session.execute(stmt)
    ]


def suggest_countries(query: str, limit: int = 10) -> list[Suggestion]:
    """Countries whose code or name matches the query; codes first."""
    needle = fold(query)
    if not needle:
        return []
    exact, starts, contains = [], [], []
    for code, name in names_by_code().items():
        folded = fold(name)
        if code.casefold() == needle:
            exact.append(Suggestion(code, name))
        elif folded.startswith(needle) or code.casefold().startswith(needle):
            starts.append(Suggestion(code, name))
        elif needle in folded:
            contains.append(Suggestion(code, name))
    return (exact + sorted(starts, key=lambda s: s.hint) + sorted(contains, key=lambda s: s.hint))[:limit]


@cache
def _country_index() -> NameIndex:
    """Country codes with their names (a fixed list: folded once per process)."""
    return NameIndex((code, [name]) for code, name in names_by_code().items())


def catalogue_index(session: Session, param: str) -> NameIndex:
    """Every name and alias of the actors or systems (`param`), or the countries, kinds or statuses."""
    if param == "actor":
        return NameIndex(
            (name, aliases) for name, aliases in session.execute(select(Actor.name, Actor.aliases))
        )
    if param == "system":
        return NameIndex(
            (name, aliases) for name, aliases in session.execute(select(System.designation, System.aliases))
        )
    if param in COUNTRY_PARAMS:
        return _country_index()
    return NameIndex({"kind": KINDS, "status": STATUSES}.get(param, ()))


def with_suggestions(session: Session, errors: list[FilterError]) -> list[FilterError]:
    """The errors, each refused name given the close known values ("Peskov": "Dmitry Peskov").

    The catalogue is read only when a value was refused, once per parameter.
    """
    indexes: dict[str, NameIndex] = {}
    out = []
    for e in errors:
        if e.value is not None and e.param in ("actor", "system", "kind", "status", *COUNTRY_PARAMS):
            if e.param not in indexes:
                indexes[e.param] = catalogue_index(session, e.param)
            close = indexes[e.param].close(e.value, DID_YOU_MEAN)
            e = replace(e, suggestions=tuple(c.name for c in close))
        out.append(e)
    return out
