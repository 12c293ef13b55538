"""Reference lists with event counts: actors, systems and countries (visible events only)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.countries import country_name
from app.domain.textkeys import fold
from app.models import Actor, System
from app.queries.aggregates import facts
from app.queries.aggregates.cache import cached, data_version
from app.queries.families import family_totals
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
    """A catalogued system, how many events name it, and its place in its family's tree."""

    id: int
    designation: str
    aliases: list[str]
    category: str | None
    origin_code: str | None
    events: int
    parent_id: int | None = None
    depth: int = 0  # 0 for a family or a system on its own, 1 for a variant, 2 for a variant's variant...
    family_events: int | None = None  # with variants: events naming it or any variant, each once
    parent: str | None = None  # the family's designation


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
    """Per-entity event counts from the facts copy (tests/sql_oracle.py counts in SQL).

    Kept per data version like the timeline's aggregates: counting every link of the copy is most of
    a list page's cost, and the answer changes only with a write.
    """

    def count() -> dict[str, Any]:
        copy = facts.current(session)
        return {"countries": copy.countries, **facts.reference_counts(copy)}

    return cached(("reference counts", data_version(session)), count)


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
    """Systems as a tree: families busiest first, each followed by its variants (indented by `depth`).

    `query` matches designations and aliases; a matching variant is shown under its family, whose row
    comes along. Families count their own events and, once each, those of the whole family.
    """
    counted = _counted(session)
    rows = [
        SystemRow(
            s.id,
            s.designation,
            list(s.aliases),
            s.category,
            s.origin_code,
            _count_of(counted["system"], s.id),
            s.parent_id,
        )
        for s in session.scalars(select(System))
    ]
    matched = None
    if fold(query):
        matched = set(
            session.scalars(select(System.id).where(_key_matches("systems.match_keys", fold(query))))
        )
    return system_tree(rows, family_totals(session) if any(r.parent_id for r in rows) else {}, matched)[
        :limit
    ]


def system_tree(rows: list[SystemRow], totals: dict[int, int], matched: set[int] | None) -> list[SystemRow]:
    """Rows in tree order (depth first, busiest first at each level), keeping `matched` and their families."""
    by_id = {r.id: r for r in rows}
    children: dict[int | None, list[SystemRow]] = {}
    for r in rows:
        parent = r.parent_id if r.parent_id in by_id else None
        children.setdefault(parent, []).append(r)
    keep: set[int] | None = None
    if matched is not None:
        keep = set()
        for ident in matched:
            step: int | None = ident
            while step is not None and step in by_id and step not in keep:  # up to the family's root
                keep.add(step)
                step = by_id[step].parent_id

    def weight(r: SystemRow) -> tuple[int, str]:
        return (-totals.get(r.id, r.events), r.designation.casefold())

    out: list[SystemRow] = []
    placed: set[int] = set()

    def walk(parent: int | None, depth: int) -> None:
        for r in sorted(children.get(parent, []), key=weight):
            if r.id in placed:
                continue
            placed.add(r.id)
            if keep is None or r.id in keep:
                family = by_id[parent].designation if parent is not None else None
                out.append(replace(r, depth=depth, family_events=totals.get(r.id), parent=family))
            walk(r.id, depth + 1)

    walk(None, 0)
    for r in sorted(rows, key=weight):  # a loop written behind the app's back has no root: list it anyway
        if r.id not in placed:
            placed.add(r.id)
            if keep is None or r.id in keep:
                out.append(replace(r, family_events=totals.get(r.id)))
            walk(r.id, 1)
    return out


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
