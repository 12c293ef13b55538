"""Facet counts for a filter: how many events each country, kind, status, stage, actor or system leaves.

Semantics ("disjunctive faceting", as in most faceted search): the count beside a value is the number of
events the filter would leave if that parameter held just that value. For a parameter the filter does not
use yet, that is simply "add this value". For a parameter already in use, the parameter's own condition
is left out while counting, so the numbers beside its other values stay meaningful: with kind=statement
selected, "offer 12" still says how many offers the rest of the filter matches, instead of collapsing to
0 (AND would be nonsense for one field) or to an OR-union count that hides the value's own weight. Ticking
one more value ORs it in, so the new total is at most the sum of the ticked values' counts.

All facets come from ONE SQL statement (a UNION ALL of one small aggregate per facet, each over
`matching_ids` of the filter minus that facet's own parameter), so the cost is a fixed number of queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    Text,
    case,
    cast,
    distinct,
    false,
    func,
    literal,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.orm import Session

from app.countries import country_name
from app.filters import EventFilter
from app.models import Actor, Event, EventActor, EventCountry, EventSystem, System
from app.queries import facts
from app.queries.events import conditions, matching_ids
from app.textkeys import fold
from app.vocab import KINDS, STAGES, STATUSES

COUNTRY_FACETS = ("supplier", "recipient", "target", "country")
# Facets on columns of the events table (stages are made cumulative, stage >= n, in Python).
EVENT_COLUMNS: dict[str, Any] = {"kind": Event.kind, "status": Event.status, "stage_min": Event.stage}
# How many values a long facet (countries, actors, systems) lists besides the selected ones.
TOP_N = 6


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet: what goes in the URL, how it reads, its count, and whether it is ticked."""

    value: str
    label: str
    count: int
    selected: bool = False


@dataclass
class Facets:
    """Facet values by parameter name (kind, status, stage_min, supplier, ..., actor, system)."""

    groups: dict[str, list[FacetValue]] = field(default_factory=dict)
    # False for the instant, count-free panel (vocabulary and ticked values) shown while counts load.
    counted: bool = True

    def __getitem__(self, param: str) -> list[FacetValue]:
        return self.groups.get(param, [])


def _top(
    stmt: Select[Any, Any, Any, Any],
    count: ColumnElement[int],
    value: Any,
    limit: int,
) -> Select[Any, Any, Any, Any]:
    """Order a grouped branch (ticked values first, then by count) and cut it to its top values."""
    sub = stmt.order_by(stmt.selected_columns.sel.desc(), count.desc(), value).limit(limit).subquery()
    return select(sub.c.facet, sub.c.value, sub.c.n, sub.c.sel)


def facet_statement(f: EventFilter, top_n: int = TOP_N) -> CompoundSelect:
    """The single UNION ALL statement behind every facet of the filter: rows of (facet, value, n, sel)."""
    n = func.count().label("n")
    unticked = false().label("sel")
    branches: list[Select[Any, Any, Any, Any]] = []
    # Columns of the events table: the facets whose own parameter the filter leaves unused share the
    # filter as it is, so they share one scan (GROUPING SETS); a used one gets a scan of its own.
    shared = [p for p in EVENT_COLUMNS if f.without(p) == f]
    for param in (p for p in EVENT_COLUMNS if p not in shared):
        column = EVENT_COLUMNS[param]
        branches.append(
            select(literal(param).label("facet"), cast(column, Text).label("value"), n, unticked)
            .where(*conditions(f.without(param)))
            .group_by(column)
        )
    if shared:
        columns = [EVENT_COLUMNS[p] for p in shared]
        whens = [(func.grouping(c) == 0, literal(p)) for p, c in zip(shared[:-1], columns, strict=False)]
        which = case(*whens, else_=literal(shared[-1])) if whens else literal(shared[0])
        branches.append(
            select(
                which.label("facet"),
                func.coalesce(*(cast(c, Text) for c in columns)).label("value"),
                n,
                unticked,
            )
            .where(*conditions(f))
            .group_by(func.grouping_sets(*(tuple_(c) for c in columns)))
        )
    for param in COUNTRY_FACETS:
        selected = getattr(f, param)
        # (event, role, country) is the key, so within one role count(*) counts events.
        events = func.count(distinct(EventCountry.event_id)) if param == "country" else func.count()
        stmt = select(
            literal(param).label("facet"),
            EventCountry.country_code.label("value"),
            events.label("n"),
            EventCountry.country_code.in_(selected or ("",)).label("sel"),
        ).where(EventCountry.event_id.in_(matching_ids(f.without(param))))
        if param != "country":
            stmt = stmt.where(EventCountry.role == param)
        stmt = stmt.group_by(EventCountry.country_code)
        branches.append(_top(stmt, events, EventCountry.country_code, top_n + len(selected)))
    actor_events = func.count(distinct(EventActor.event_id))
    actor_stmt = (
        select(
            literal("actor").label("facet"),
            Actor.name.label("value"),
            actor_events.label("n"),
            Actor.match_keys.overlap([fold(a) for a in f.actor] or [""]).label("sel"),
        )
        .join(Actor, Actor.id == EventActor.actor_id)
        .where(EventActor.event_id.in_(matching_ids(f.without("actor"))))
        .group_by(Actor.id)
    )
    branches.append(_top(actor_stmt, actor_events, Actor.name, top_n + len(f.actor)))
    system_events = func.count(distinct(EventSystem.event_id))
    system_stmt = (
        select(
            literal("system").label("facet"),
            System.designation.label("value"),
            system_events.label("n"),
            System.match_keys.overlap([fold(s) for s in f.system] or [""]).label("sel"),
        )
        .join(System, System.id == EventSystem.system_id)
        .where(EventSystem.event_id.in_(matching_ids(f.without("system"))))
        .group_by(System.id)
    )
    branches.append(_top(system_stmt, system_events, System.designation, top_n + len(f.system)))
    return union_all(*branches)


def facet_counts(session: Session, f: EventFilter, top_n: int = TOP_N) -> Facets:
    """Every facet of the filter: from the in-memory copy when it is on, else from one SQL query."""
    copy = facts.for_session(session)
    if copy is not None:
        return assemble(f, facts.Selection(session, copy, f).facet_rows(top_n))
    return facet_counts_sql(session, f, top_n)


def facet_counts_sql(session: Session, f: EventFilter, top_n: int = TOP_N) -> Facets:
    """Every facet of the filter, from one SQL query."""
    raw: dict[str, list[tuple[str, int, bool]]] = {}
    for facet, value, count, sel in session.execute(facet_statement(f, top_n)):
        raw.setdefault(facet, []).append((value, int(count), bool(sel)))
    return assemble(f, raw)


def assemble(f: EventFilter, raw: dict[str, list[tuple[str, int, bool]]]) -> Facets:
    """The panel's facets from (value, count, ticked) rows per facet, however they were counted."""
    facets = Facets()
    for param, vocab in (("kind", KINDS), ("status", STATUSES)):
        got = {v: c for v, c, _ in raw.get(param, [])}
        chosen = getattr(f, param)
        facets.groups[param] = [FacetValue(v, v, got.get(v, 0), v in chosen) for v in vocab]
    exact = {int(v): c for v, c, _ in raw.get("stage_min", [])}
    facets.groups["stage_min"] = [
        FacetValue(str(s), f"{s} · {label}", sum(c for st, c in exact.items() if st >= s), f.stage_min == s)
        for s, label in STAGES.items()
    ]
    for param in COUNTRY_FACETS:
        got = {v: c for v, c, _ in raw.get(param, [])}
        selected = getattr(f, param)
        values = [FacetValue(code, country_name(code), got.get(code, 0), True) for code in selected]
        values += [FacetValue(c, country_name(c), n, False) for c, n in got.items() if c not in selected]
        facets.groups[param] = values
    for param in ("actor", "system"):
        rows = raw.get(param, [])
        values = [FacetValue(v, v, n, sel) for v, n, sel in rows]
        # A ticked name that matches nothing (or no event under the rest of the filter) stays visible.
        matched = {fold(v.value) for v in values if v.selected}
        ticked_keys = {fold(x) for x in getattr(f, param)}
        if len(matched) < len(ticked_keys):
            values += [FacetValue(x, x, 0, True) for x in getattr(f, param) if fold(x) not in matched][
                : len(ticked_keys) - len(matched)
            ]
        facets.groups[param] = values
    # Publishers and tags are not counted (free text, long tails); the panel still lists the ticked ones.
    for param in ("source", "tag"):
        facets.groups[param] = [FacetValue(v, v, 0, True) for v in getattr(f, param)]
    for param in (*COUNTRY_FACETS, "actor", "system"):
        facets.groups[param].sort(key=lambda x: (not x.selected, -x.count, x.label))
    return facets


def facet_skeleton(f: EventFilter) -> Facets:
    """The panel without counts, from the vocabulary and the filter alone (no SQL): what the first page shows.

    Every kind, status and stage is listed, and every ticked country, actor, system, publisher and tag stays
    a ticked box, so the form keeps the whole filter while the counted lists load in their own request.
    """
    facets = Facets(counted=False)
    for param, vocab in (("kind", KINDS), ("status", STATUSES)):
        chosen = getattr(f, param)
        facets.groups[param] = [FacetValue(v, v, 0, v in chosen) for v in vocab]
    facets.groups["stage_min"] = [
        FacetValue(str(s), f"{s} · {label}", 0, f.stage_min == s) for s, label in STAGES.items()
    ]
    for param in COUNTRY_FACETS:
        facets.groups[param] = [FacetValue(c, country_name(c), 0, True) for c in getattr(f, param)]
    for param in ("actor", "system", "source", "tag"):
        facets.groups[param] = [FacetValue(v, v, 0, True) for v in getattr(f, param)]
    return facets
