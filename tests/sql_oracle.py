"""PostgreSQL's answers to the questions the in-memory facts copy answers in the app: the test oracle.

The app answers totals, facets, the chart, the dyad matrix, timeline page ids and the reference lists'
counts from the copy (app/queries/aggregates/facts/). These are the same questions asked of PostgreSQL with
the
filter's SQL `conditions()`; tests/test_facts.py (and others) compare both on many filters, so the copy
is checked against the source of truth without a second engine in the request path.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Date,
    DateTime,
    Select,
    Text,
    and_,
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
from sqlalchemy.orm import Session, aliased

from app.domain.countries import country_name
from app.domain.textkeys import fold
from app.domain.vocab import ORIGIN_STEPS
from app.filters import EventFilter
from app.models import Actor, Event, EventActor, EventCountry, EventSystem, System
from app.queries.aggregates.dyads import (
    CORROBORATED,
    LADDER_STAGE,
    STEP_COLUMNS,
    Ladder,
    add_months,
    ladder_filter,
    ladder_step,
    mark_single_origin,
)
from app.queries.aggregates.facets import COUNTRY_FACETS, TOP_N, Facets, assemble
from app.queries.aggregates.lists import LIST_LIMIT, ActorRow, CountryRow, SystemRow, _matching
from app.queries.events import Cursor, conditions, event_select, matching_ids
from app.queries.reference import _key_matches

# Facets on columns of the events table (stages are made cumulative, stage >= n, in Python).
EVENT_COLUMNS: dict[str, Any] = {
    "kind": Event.kind,
    "status": Event.status,
    "stage_min": Event.stage,
    "likelihood": Event.likelihood,
    "confidence": Event.confidence,
}


def count_events(session: Session, f: EventFilter) -> int:
    """How many events match the filter, counted by PostgreSQL."""
    return int(session.scalar(select(func.count()).select_from(matching_ids(f).subquery())) or 0)


def page_ids(session: Session, f: EventFilter, cursor: Cursor | None, limit: int) -> list[int]:
    """Ids of a timeline page as the SQL keyset query over the timeline index gives them."""
    stmt = event_select(f).with_only_columns(Event.id).limit(limit)
    if cursor is not None:
        stmt = stmt.where(tuple_(Event.date_start, Event.id) < tuple_(cursor.date_start, cursor.id))
    return list(session.scalars(stmt))


def review_ids(session: Session, f: EventFilter, after: tuple[int, int] | None, limit: int) -> list[int]:
    """Ids of a review queue page: due events matching the filter, oldest review clock first, then id."""
    due = replace(f, due=True)
    clock_micros = cast(func.extract("epoch", Event.review_clock_at) * 1_000_000, BigInteger)
    stmt = select(Event.id).where(*conditions(due)).order_by(clock_micros, Event.id).limit(limit)
    if after is not None:
        stmt = stmt.where(tuple_(clock_micros, Event.id) > tuple_(literal(after[0]), literal(after[1])))
    return list(session.scalars(stmt))


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
    # Events per number of origins, 3 meaning 3 or more, over the filter without its origins range.
    bucket = func.least(Event.origin_count, ORIGIN_STEPS[-1])
    branches.append(
        select(literal("origins").label("facet"), cast(bucket, Text).label("value"), n, unticked)
        .where(*conditions(replace(f, origins_min=None, origins_max=None)))
        .group_by(bucket)
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
    """Every facet of the filter, from one SQL query."""
    raw: dict[str, list[tuple[str, int, bool]]] = {}
    for facet, value, count, sel in session.execute(facet_statement(f, top_n)):
        raw.setdefault(facet, []).append((value, int(count), bool(sel)))
    return assemble(f, raw)


def chart_rows(session: Session, f: EventFilter) -> list[tuple[date, bool, str, int]]:
    """(month, year precision?, kind, count) of the filter's events, grouped by PostgreSQL."""
    # date::timestamp keeps date_trunc away from the session time zone.
    month = cast(func.date_trunc("month", cast(Event.date_start, DateTime)), Date).label("month")
    yearly = (Event.date_precision == "year").label("yearly")
    stmt = (
        select(month, yearly, Event.kind, func.count())
        .where(*conditions(f))
        .group_by(month, yearly, Event.kind)
    )
    return [(m, bool(y), k, int(n)) for m, y, k, n in session.execute(stmt)]


def dyad_cells(session: Session, f: EventFilter) -> dict[tuple[str, str], int]:
    """Supplier x recipient counts of the filter's events, grouped by PostgreSQL."""
    sup, rec = aliased(EventCountry), aliased(EventCountry)
    n = func.count(distinct(sup.event_id))
    stmt = (
        select(sup.country_code, rec.country_code, n)
        .join(rec, and_(rec.event_id == sup.event_id, rec.role == "recipient"))
        .where(sup.role == "supplier", sup.event_id.in_(matching_ids(f)))
        .group_by(sup.country_code, rec.country_code)
    )
    return {(s, r): int(c) for s, r, c in session.execute(stmt)}


def dyad_stages(session: Session, f: EventFilter) -> dict[tuple[str, str], int]:
    """The highest stage of each supplier x recipient pair by the ladder's rules, grouped by PostgreSQL."""
    g, _ = ladder_filter(f)
    sup, rec = aliased(EventCountry), aliased(EventCountry)
    top = func.max(LADDER_STAGE)
    stmt = (
        select(sup.country_code, rec.country_code, top)
        .join(rec, and_(rec.event_id == sup.event_id, rec.role == "recipient"))
        .join(Event, Event.id == sup.event_id)
        .where(sup.role == "supplier", sup.event_id.in_(matching_ids(g)))
        .group_by(sup.country_code, rec.country_code)
    )
    return {(s, r): int(t) for s, r, t in session.execute(stmt)}


def actor_list(session: Session, query: str = "", limit: int = LIST_LIMIT) -> list[ActorRow]:
    """Actors with their event counts, busiest first, counted by PostgreSQL."""
    events = func.count(distinct(Event.id))
    stmt = (
        select(Actor, events)
        .outerjoin(EventActor, EventActor.actor_id == Actor.id)
        .outerjoin(Event, and_(Event.id == EventActor.event_id, Event.deleted_at.is_(None)))
        .group_by(Actor.id)
        .order_by(events.desc(), Actor.name)
        .limit(limit)
    )
    if fold(query):
        stmt = stmt.where(_key_matches("actors.match_keys", fold(query)))
    return [
        ActorRow(a.id, a.name, list(a.aliases), a.type, a.country_code, a.title, int(n))
        for a, n in session.execute(stmt)
    ]


def system_list(session: Session, query: str = "", limit: int = LIST_LIMIT) -> list[SystemRow]:
    """Systems with their event counts, counted by PostgreSQL, in the list's family tree order."""
    from app.queries.aggregates.lists import system_tree
    from app.queries.families import family_totals

    events = func.count(distinct(Event.id))
    stmt = (
        select(System, events)
        .outerjoin(EventSystem, EventSystem.system_id == System.id)
        .outerjoin(Event, and_(Event.id == EventSystem.event_id, Event.deleted_at.is_(None)))
        .group_by(System.id)
    )
    rows = [
        SystemRow(s.id, s.designation, list(s.aliases), s.category, s.origin_code, int(n), s.parent_id)
        for s, n in session.execute(stmt)
    ]
    matched = None
    if fold(query):
        matched = set(
            session.scalars(select(System.id).where(_key_matches("systems.match_keys", fold(query))))
        )
    return system_tree(rows, family_totals(session), matched)[:limit]


def country_list(session: Session, query: str = "") -> list[CountryRow]:
    """Countries named by at least one visible event, with counts per role, counted by PostgreSQL."""

    def role(name: str) -> Any:
        return func.count(distinct(EventCountry.event_id)).filter(EventCountry.role == name)

    stmt = (
        select(
            EventCountry.country_code,
            role("supplier"),
            role("recipient"),
            role("target"),
            role("intermediary"),
            func.count(distinct(EventCountry.event_id)),
        )
        .join(Event, and_(Event.id == EventCountry.event_id, Event.deleted_at.is_(None)))
        .group_by(EventCountry.country_code)
    )
    rows = [
        CountryRow(code, country_name(code), int(s), int(r), int(t), int(i), int(n))
        for code, s, r, t, i, n in session.execute(stmt)
    ]
    return _matching(rows, query)


def support_ladder(session: Session, f: EventFilter) -> Ladder:
    """The dyad ladder computed by PostgreSQL: two queries whatever the event count.

    Steps come from a window over the dyad's events in date order: an event is a step when its stage
    is above every earlier one. Months come from one grouped query; the running maximum is added here.
    """
    g, excluded = ladder_filter(f)
    result = Ladder(f.supplier[0], f.recipient[0], excluded_statuses=excluded)
    before = (
        func.max(LADDER_STAGE).over(order_by=(Event.date_start, Event.id), rows=(None, -1)).label("before")
    )
    ordered = select(*STEP_COLUMNS, before).where(*conditions(g)).subquery()
    steps = (
        select(ordered)
        .where((ordered.c.before.is_(None)) | (ordered.c.stage > ordered.c.before))
        .order_by(ordered.c.date_start, ordered.c.id)
    )
    result.steps = [ladder_step(r) for r in session.execute(steps)]
    corroborated = select(func.max(LADDER_STAGE)).where(*conditions(g), Event.origin_count >= CORROBORATED)
    mark_single_origin(result, session.scalar(corroborated))
    month = cast(func.date_trunc("month", cast(Event.date_start, DateTime)), Date).label("month")
    monthly = (
        select(month, func.count(), func.max(LADDER_STAGE), func.bool_and(Event.date_precision == "year"))
        .where(*conditions(g))
        .group_by(month)
        .order_by(month)
    )
    add_months(result, session.execute(monthly).tuples())
    return result


def new_since(session: Session, f: EventFilter, since: datetime) -> int:
    """Events of the filter created, changed or restored after `since` (the Views menu's "new")."""
    from app.models import AuditEntry

    written = select(AuditEntry.entity_id).where(
        AuditEntry.entity_type == "event",
        AuditEntry.action.in_(("create", "update", "restore")),
        AuditEntry.at > since,
    )
    ids = matching_ids(f).where(Event.id.in_(written))
    return int(session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
