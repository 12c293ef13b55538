"""The CSV export: stored lines read in timeline order, and the query that makes a line from the tables."""

from __future__ import annotations

import inspect
import itertools
import math
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.csvio import HEADER, LineFormatter, join_items
from app.filters import EventFilter
from app.models import Actor, Event, EventActor, EventCountry, EventLine, EventSystem, Source, System
from app.queries.events import conditions

# Rows per FETCH: a few MB of text, fetched while the previous batch is written out.
BATCH = 2000
_SEP: ColumnElement[str] = literal_column("'; '")
# Both plans want joins without hash tables: the grouped plan merge-joins the link aggregates in
# event-id order (a hash of a million aggregated rows spills and loses the order), the per-event plan
# looks actors and systems up by primary key (a hash per event rebuilt 1,000,000 times cost 4×).
# JIT compiles for seconds and buys nothing for either. A cursor is planned for its first 10 % of rows
# by default, which for a narrow filter meant walking every event in timeline order to find the few
# that match (10–13 s instead of 0.8 s for one actor's 11,812 events); the export reads every row.
# Applied with SET LOCAL to the export's own transaction, and by the bench to the COPY it compares with.
PLAN_SETTINGS: dict[str, str] = {"jit": "off", "enable_hashjoin": "off", "cursor_tuple_fraction": "1"}
# The stored lines of a large share of the events: both tables read in order on disk, the events hashed
# (64 MB holds a million in one batch) and the joined lines sorted into timeline order once. Walking the
# timeline index and looking each line up reads both tables in random order: at a million events 8.6 s
# against 5.0 s with warm caches, and 34 s against 8.8 s right after the OS dropped its page cache (this
# machine's kernel pages out idle file pages on its own). A narrow filter keeps the lookups.
WIDE_LINE_SETTINGS: dict[str, str] = {
    "jit": "off",
    "enable_nestloop": "off",
    "cursor_tuple_fraction": "1",
    "work_mem": "'64MB'",
}
_cursor_names = itertools.count()


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
    `grouped` aggregates each link table once, in event-id order, and merge-joins the aggregates to the
    events, much faster for a large share of events (one sort of the joined rows at the end).
    """
    joins: list[tuple[Any, ColumnElement[bool]]] = []

    def attach(sub: Select[Any], event_id: Any, name: str) -> Any:
        table: Any
        if grouped:
            # Newest id first, like the events' backward scan: the merge joins then need no sorts.
            grouped_sub = sub.add_columns(event_id.label("event_id")).group_by(event_id)
            table = grouped_sub.order_by(event_id.desc()).subquery(name)
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
# An event row's xmin as a number: the version of the row a stored line was made from.
XMIN: ColumnElement[int] = literal_column("events.xmin::text::bigint")
# What a stored line was formatted with; older lines stop matching when it changes. Raise LINE_FORMAT
# for a change that the fingerprint below cannot see (a PostgreSQL setting, a library's behaviour).
LINE_FORMAT = 1


def format_fingerprint() -> int:
    """A number that changes with the columns, the cells' SQL and the Python that formats a line."""
    from app import csvio

    parts = [
        str(LINE_FORMAT),
        *HEADER,
        str(export_select(EventFilter()).compile(dialect=postgresql.dialect())),
        str(export_select(EventFilter(), grouped=True).compile(dialect=postgresql.dialect())),
        *(
            inspect.getsource(code)
            for code in (cells_of, csvio.LineFormatter, csvio.neutralise, csvio.join_items, csvio.csv_writer)
        ),
    ]
    return zlib.crc32("\x1f".join(parts).encode()) & 0x7FFFFFFF


def valid_line() -> ColumnElement[bool]:
    """Join condition: the event's stored line, made from this very row version and format."""
    return and_(EventLine.event_id == Event.id, EventLine.src_xmin == XMIN, EventLine.fmt == FORMAT)


# Below this share of all events, per-event lookups beat aggregating the whole link tables.
GROUPED_SHARE = 0.15
GROUPED_MIN_ROWS = 2000


def _count(session: Session, f: EventFilter, cap: int | None = None) -> int:
    """How many events the filter matches, counting no further than `cap` (a narrow count stops early)."""
    ids = select(Event.id).where(*conditions(f))
    matched = ids.limit(cap).subquery() if cap is not None else ids.subquery()
    return int(session.scalar(select(func.count()).select_from(matched)) or 0)


def _share_floor(session: Session) -> int:
    """How many events make a large share (GROUPED_SHARE of all, at least GROUPED_MIN_ROWS)."""
    return max(GROUPED_MIN_ROWS, math.ceil(GROUPED_SHARE * _count(session, EventFilter())))


def use_grouped_plan(session: Session, f: EventFilter) -> bool:
    """True when the filter matches a large share of the events (two counts decide)."""
    need = _share_floor(session)
    return _count(session, f, need) >= need


def use_grouped_plan_for(session: Session, rows: int) -> bool:
    """True when `rows` events are a large share of all of them."""
    return rows >= _share_floor(session)


def declare(session: Session | Connection, stmt: Select[Any] | Any) -> Any:
    """Open a server-side cursor on the statement, straight on the psycopg connection.

    The rows are plain text and an array, so SQLAlchemy's per-row result processing (two thirds of
    the Python time of a full export) has nothing to add.
    """
    conn = session.connection() if isinstance(session, Session) else session
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw = conn.connection.driver_connection
    assert raw is not None
    cursor = raw.cursor(name=f"export_{next(_cursor_names)}")
    cursor.execute(str(compiled), compiled.params)
    return cursor


def fetch_batches(cursor: Any, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    """The cursor's rows, `batch` at a time, each FETCH sent while the previous batch is written out.

    The worker thread waits on the socket without the GIL, so PostgreSQL produces and sends the next
    rows on the other core while this thread formats CSV; leaving the block waits for a FETCH in flight.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="export-fetch") as pool:
        pending = pool.submit(cursor.fetchmany, batch)
        while rows := pending.result():
            pending = pool.submit(cursor.fetchmany, batch)
            yield rows


def export_rows(
    session: Session, f: EventFilter, batch: int = BATCH, grouped: bool | None = None
) -> Iterator[list[str | None]]:
    """Stream the export rows from a server-side cursor, `batch` rows at a time (memory stays flat)."""
    if grouped is None:
        grouped = use_grouped_plan(session, f)
    for name, value in PLAN_SETTINGS.items():
        session.execute(text(f"SET LOCAL {name} = {value}"))
    cursor = declare(session, export_select(f, grouped=grouped))
    try:
        for rows in fetch_batches(cursor, batch):
            yield from map(cells_of, rows)
    finally:
        cursor.close()


def cells_of(row: tuple[Any, ...]) -> list[str | None]:
    """A row of `export_select` as the CSV's cells (the tags array joined like any list)."""
    cells = list(row)
    cells[TAGS] = join_items(cells[TAGS]) if cells[TAGS] else None
    return cells


def line_select(f: EventFilter) -> Select[int, str]:
    """(event id, stored line or NULL) for every event the filter matches, in timeline order."""
    return (
        select(Event.id, EventLine.line)
        .select_from(Event)
        .outerjoin(EventLine, valid_line())
        .where(*conditions(f))
        .order_by(Event.date_start.desc(), Event.id.desc())
    )


def line_settings(session: Session, f: EventFilter) -> dict[str, str]:
    """The planner settings for `line_select(f)`: sequential reads for a large share of the events."""
    return WIDE_LINE_SETTINGS if use_grouped_plan(session, f) else PLAN_SETTINGS


def export_batches(session: Session, f: EventFilter, batch: int | None = None) -> Iterator[list[str]]:
    """The export's CSV lines in timeline order, `batch` at a time, from one snapshot.

    Most lines are stored (export_lines keeps them); an event without a valid one (new, just edited,
    or not filled yet) has its line made here from its cells, with the same formatter, so the bytes
    are the same either way. One query streams; one more per batch that lacks lines.
    """
    if isinstance(session.get_bind(), Engine) and not session.in_transaction():
        # The stream and the per-batch lookups must see the same data, however long the export runs.
        # (A session bound to a connection, in tests, shares that connection's transaction as it is.)
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    for name, value in line_settings(session, f).items():
        session.execute(text(f"SET LOCAL {name} = {value}"))
    batch = batch or BATCH
    cursor = declare(session, line_select(f))
    # The cursor's plan is fixed now; the per-batch lookups of missing lines want the per-event plan's
    # settings (a hash per event under enable_nestloop=off would rebuild it for every event).
    for name in WIDE_LINE_SETTINGS:
        session.execute(text(f"SET LOCAL {name} = {PLAN_SETTINGS.get(name, 'DEFAULT')}"))
    formatter = LineFormatter()
    try:
        for rows in fetch_batches(cursor, batch):
            missing = [event_id for event_id, line in rows if line is None]
            if not missing:
                yield [line for _, line in rows]
                continue
            made = {
                int(row[0]): formatter(cells_of(row))
                for row in session.execute(export_select(EventFilter()).where(Event.id.in_(missing)))
            }
            yield [line if line is not None else made.get(event_id, "") for event_id, line in rows]
    finally:
        cursor.close()


FORMAT = format_fingerprint()
