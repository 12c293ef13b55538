"""The CSV export query: one row per event, every cell already formatted by PostgreSQL, streamed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Select, String, Text, case, cast, func, literal_column, select, text, true
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.csvio import HEADER, join_items
from app.filters import EventFilter
from app.models import Actor, Event, EventActor, EventCountry, EventSystem, Source, System
from app.queries.events import conditions, count_events

BATCH = 1000
_SEP: ColumnElement[str] = literal_column("'; '")


def _iso(day: Any, precision: Any) -> ColumnElement[str]:
    """A stored date at its precision as YYYY, YYYY-MM or YYYY-MM-DD (app.dates.format_iso in SQL)."""
    return case(
        (precision == "year", func.to_char(day, "YYYY")),
        (precision == "month", func.to_char(day, "YYYY-MM")),
        else_=func.to_char(day, "YYYY-MM-DD"),
    )


def _utc(ts: Any) -> ColumnElement[str]:
    return func.to_char(func.timezone("UTC", ts), 'YYYY-MM-DD"T"HH24:MI:SS"Z"')


def _esc(value: Any) -> ColumnElement[str]:
    """csvio.escape_item in SQL: a literal ';' inside an item becomes ';;'."""
    return func.replace(value, ";", ";;")


def _agg(item: Any, position: Any) -> Any:
    """csvio.join_items in SQL: items in position order joined with '; '."""
    return func.string_agg(item, aggregate_order_by(_SEP, position))


def _per_source(item: Any, column: Any) -> Any:
    """One aligned item per source; NULL (an empty cell) when no source sets the field."""
    return case((func.count(column) == 0, None), else_=_agg(func.coalesce(item, ""), Source.position))


def export_select(f: EventFilter, *, grouped: bool = False) -> Select[Any]:
    """Rows for the CSV in timeline order: text cells in csvio.HEADER order (tags as an array).

    Two plans, same rows: per-event LATERAL lookups start streaming at once and suit a narrow filter;
    `grouped` aggregates each link table once and hash-joins it, much faster for a large share of events.
    """
    joins: list[tuple[Any, ColumnElement[bool]]] = []

    def attach(sub: Select[Any], event_id: Any, name: str) -> Any:
        table: Any
        if grouped:
            table = sub.add_columns(event_id.label("event_id")).group_by(event_id).subquery(name)
            joins.append((table, table.c.event_id == Event.id))
        else:
            table = sub.where(event_id == Event.id).lateral(name)
            joins.append((table, true()))
        return table

    countries = attach(
        select(
            *(
                _agg(EventCountry.country_code, EventCountry.position)
                .filter(EventCountry.role == role)
                .label(role)
                for role in ("supplier", "recipient", "target", "intermediary")
            )
        ),
        EventCountry.event_id,
        "c",
    )
    actors = attach(
        select(_agg(_esc(Actor.name) + " (" + EventActor.role + ")", EventActor.position).label("actors"))
        .select_from(EventActor)
        .join(Actor, Actor.id == EventActor.actor_id),
        EventActor.event_id,
        "a",
    )
    quantity = " ×" + cast(EventSystem.quantity, Text)
    note = case((EventSystem.quantity_note != "", " [" + _esc(EventSystem.quantity_note) + "]"))
    systems = attach(
        select(
            _agg(func.concat(_esc(System.designation), quantity, note), EventSystem.position).label("systems")
        )
        .select_from(EventSystem)
        .join(System, System.id == EventSystem.system_id),
        EventSystem.event_id,
        "s",
    )
    sources = attach(
        select(
            _agg(_esc(Source.publisher), Source.position).label("publishers"),
            _per_source(_esc(Source.url), Source.url).label("urls"),
            _per_source(_esc(Source.title), Source.title).label("titles"),
            _per_source(_iso(Source.published_on, Source.published_precision), Source.published_on).label(
                "dates"
            ),
            _agg(Source.reliability + cast(Source.credibility, Text), Source.position).label("grades"),
            _per_source(_esc(Source.quote), Source.quote).label("quotes"),
            _per_source(_esc(Source.note), Source.note).label("notes"),
        ),
        Source.event_id,
        "src",
    )
    stmt = (
        select(
            cast(Event.id, String),
            _iso(Event.date_start, Event.date_precision),
            _iso(Event.date_end, Event.date_end_precision),
            Event.title,
            Event.kind,
            Event.status,
            cast(Event.stage, String),
            cast(Event.stage_override, String),
            countries.c.supplier,
            countries.c.recipient,
            countries.c.target,
            countries.c.intermediary,
            actors.c.actors,
            systems.c.systems,
            Event.location,
            Event.tags,
            Event.summary,
            sources.c.publishers,
            sources.c.urls,
            sources.c.titles,
            sources.c.dates,
            sources.c.grades,
            sources.c.quotes,
            sources.c.notes,
            _utc(Event.created_at),
            _utc(Event.updated_at),
            cast(Event.version, String),
        )
        .select_from(Event)
        .where(*conditions(f))
        .order_by(Event.date_start.desc(), Event.id.desc())
    )
    for table, on in joins:
        stmt = stmt.outerjoin(table, on)
    assert len(stmt.selected_columns) == len(HEADER)
    return stmt


TAGS = HEADER.index("tags")


# Below this share of all events, per-event lookups beat aggregating the whole link tables.
GROUPED_SHARE = 0.15
GROUPED_MIN_ROWS = 2000


def use_grouped_plan(session: Session, f: EventFilter) -> bool:
    """True when the filter matches a large share of the events (two counts decide)."""
    matched = count_events(session, f)
    if matched < GROUPED_MIN_ROWS:
        return False
    return matched >= GROUPED_SHARE * count_events(session, EventFilter())


def export_rows(
    session: Session, f: EventFilter, batch: int = BATCH, grouped: bool | None = None
) -> Iterator[list[str | None]]:
    """Stream the export rows from a server-side cursor, `batch` rows at a time (memory stays flat)."""
    if grouped is None:
        grouped = use_grouped_plan(session, f)
    if not grouped:
        # Compiling this plan costs seconds of JIT and buys nothing for index lookups.
        session.execute(text("SET LOCAL jit = off"))
    stmt = export_select(f, grouped=grouped).execution_options(stream_results=True, yield_per=batch)
    result = session.execute(stmt)
    try:
        for partition in result.partitions():
            for row in partition:
                cells = list(row)
                cells[TAGS] = join_items(cells[TAGS]) if cells[TAGS] else None
                yield cells
    finally:
        result.close()
