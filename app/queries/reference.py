"""Lookups over reference data: autocomplete suggestions and "did you mean" for actors, systems, countries."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from sqlalchemy import TextClause, func, select, text
from sqlalchemy.orm import Session

from app.domain.countries import names_by_code
from app.domain.names import NameIndex
from app.domain.textkeys import fold
from app.domain.vocab import KINDS, STATUSES
from app.filters import COUNTRY_PARAMS, FilterError
from app.models import Actor, Origin, System
from app.queries.aggregates.cache import cached, data_version

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


def _close_extra(session: Session, param: str, query: str, found: list[str], limit: int) -> list[str]:
    """Names close to the query (another script, a typo) that the substring search did not find."""
    if len(found) >= limit:
        return []
    close = catalogue_index(session, param).close(query, limit)
    return [c.name for c in close if c.name not in found][: limit - len(found)]


def _matching(session: Session, param: str, query: str, limit: int, name: Any, *more: Any) -> list[Any]:
    """Rows of (`name`, *`more`) of the entries whose name or alias contains the query, shortest names
    first, then of those with close names (another script, a typo)."""
    columns = (name, *more)
    table = name.class_.__tablename__
    stmt = (
        select(*columns)
        .where(_key_matches(f"{table}.match_keys", fold(query)))
        .order_by(func.length(name), name)
        .limit(limit)
    )
    rows = list(session.execute(stmt))
    extra = _close_extra(session, param, query, [r[0] for r in rows], limit)
    if extra:
        by_name = {r[0]: r for r in session.execute(select(*columns).where(name.in_(extra)))}
        rows += [by_name[n] for n in extra if n in by_name]
    return rows


def suggest_actors(session: Session, query: str, limit: int = 10) -> list[Suggestion]:
    """Actors whose name or alias contains the query (any word, any case or accent), then close names.

    "Peskov" and "ryab" are found in the names themselves; "Песков" or "Ryabkow" through app/domain/names.py.
    """
    needle = fold(query)
    if not needle:
        return []
    rows = _matching(
        session, "actor", query, limit, Actor.name, Actor.title, Actor.country_code, Actor.aliases
    )
    out = []
    for name, title, country, aliases in rows:
        alias = next((a for a in aliases if needle in fold(a)), None)
        hint = " · ".join(
            x
            for x in (title, country, f"also “{alias}”" if alias and needle not in fold(name) else None)
            if x
        )
        out.append(Suggestion(name, hint))
    return out


def suggest_systems(session: Session, query: str, limit: int = 10) -> list[Suggestion]:
    """Systems whose designation or alias contains the query, then close designations."""
    if not fold(query):
        return []
    rows = _matching(session, "system", query, limit, System.designation, System.category, System.origin_code)
    return [Suggestion(d, " · ".join(x for x in (category, origin) if x)) for d, category, origin in rows]


def suggest_origins(session: Session, query: str, limit: int = 10) -> list[Suggestion]:
    """Origins (outlets, agencies, officials, documents) whose name or alias contains the query."""
    needle = fold(query)
    if not needle:
        return []
    rows = _matching(session, "origin", query, limit, Origin.name, Origin.aliases)
    out = []
    for name, aliases in rows:
        alias = next((a for a in aliases if needle in fold(a)), None)
        out.append(Suggestion(name, f"also “{alias}”" if alias and needle not in fold(name) else ""))
    return out


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


# Folding a catalogue of thousands of names takes a good part of a second: each process keeps the index
# of the actors and of the systems until their names or aliases change (a digest read in milliseconds).
_indexes: dict[str, tuple[str, NameIndex]] = {}
_DIGEST = {
    "actor": "SELECT md5(string_agg(name || chr(31) || array_to_string(aliases, chr(31)), chr(30)"
    " ORDER BY id)) FROM actors",
    "system": "SELECT md5(string_agg(designation || chr(31) || array_to_string(aliases, chr(31)), chr(30)"
    " ORDER BY id)) FROM systems",
}


def catalogue_index(session: Session, param: str) -> NameIndex:
    """Every name and alias of the actors or systems (`param`), or the countries, kinds or statuses."""
    if param in COUNTRY_PARAMS:
        return _country_index()
    if param not in _DIGEST:
        return NameIndex({"kind": KINDS, "status": STATUSES}.get(param, ()))
    digest = catalogue_version(session, param)
    hit = _indexes.get(param)
    if hit is not None and hit[0] == digest:
        return hit[1]
    index = NameIndex(catalogue_entries(session, param))
    _indexes[param] = (digest, index)
    return index


def catalogue_version(session: Session, param: str) -> str:
    """A digest of every name and alias of the actors or systems (`param`): it changes when they do."""
    return str(session.scalar(text(_DIGEST[param])))


def catalogue_entries(session: Session, param: str) -> list[tuple[str, list[str]]]:
    """Every actor name or system designation (`param`) with its aliases."""
    model = Actor if param == "actor" else System
    label = Actor.name if param == "actor" else System.designation
    return [(name, list(aliases)) for name, aliases in session.execute(select(label, model.aliases))]


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


@dataclass(frozen=True)
class OriginRow:
    """An origin in the list: its names and how many live events rest on it (any of their sources)."""

    id: int
    name: str
    aliases: list[str]
    events: int


_ORIGIN_COUNTS = text(
    "SELECT s.origin_id, count(DISTINCT s.event_id) FROM sources s"
    " JOIN events e ON e.id = s.event_id AND e.deleted_at IS NULL GROUP BY s.origin_id"
)
_ORIGINS_MATCHING = text(
    "SELECT o.id, o.name, o.aliases FROM origins o WHERE (:needle = ''"
    " OR EXISTS (SELECT 1 FROM unnest(o.match_keys) k WHERE k LIKE '%' || :needle || '%'))"
    " AND (CAST(:one AS int) IS NULL OR o.id = :one)"
)


def origin_counts(session: Session) -> dict[int, int]:
    """Live events citing each origin (any of their sources), counted once per data version.

    The facts copy holds no sources, so this one reads them all: cached, every page and search of the list
    (and the API's) shares one count until the data changes.
    """
    return cached(
        ("origin counts", data_version(session)), lambda: dict(session.execute(_ORIGIN_COUNTS).tuples().all())
    )


def origin_list(
    session: Session, query: str = "", limit: int = 200, offset: int = 0, origin_id: int | None = None
) -> list[OriginRow]:
    """Origins whose name or alias contains the query, busiest first."""
    needle = fold(query).replace("%", "").replace("_", "")
    counts = origin_counts(session)
    rows = [
        OriginRow(i, name, aliases, counts.get(i, 0))
        for i, name, aliases in session.execute(_ORIGINS_MATCHING, {"needle": needle, "one": origin_id})
    ]
    rows.sort(key=lambda r: (-r.events, r.name, r.id))
    return rows[offset : offset + limit]
