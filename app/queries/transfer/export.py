"""The CSV export: the stored lines of the filter's events in timeline order, streamed from one snapshot."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from psycopg.types.string import ByteaBinaryLoader
from sqlalchemy import Connection, Engine, Select, and_, func, select, text
from sqlalchemy.orm import Session

from app.csvio import FORMAT_VERSION
from app.filters import EventFilter
from app.models import Event, EventLine
from app.queries.events import conditions
from app.queries.transfer.export_lines import make_lines

# Rows per FETCH: a few MB of text, fetched while the previous batch is written out.
BATCH = 2000
# A narrow filter looks each line up by key (no hash tables); JIT compiles for seconds and buys nothing.
# A cursor is planned for its first 10 % of rows by default, which for a narrow filter means walking
# every event in timeline order to find the few that match; the export reads every row.
PLAN_SETTINGS: dict[str, str] = {"jit": "off", "enable_hashjoin": "off", "cursor_tuple_fraction": "1"}
# The stored lines of a large share of the events: both tables read in order on disk, the events hashed
# and the joined lines sorted into timeline order once. Walking the timeline index and looking each line
# up reads both tables in random order, far slower when the pages are not cached (docs/architecture.md).
# A narrow filter keeps the lookups.
WIDE_LINE_SETTINGS: dict[str, str] = {
    "jit": "off",
    "enable_nestloop": "off",
    "cursor_tuple_fraction": "1",
    "work_mem": "'64MB'",
}
# Settings read when the cursor runs rather than when it is planned.
EXECUTION_SETTINGS = frozenset({"work_mem"})
_cursor_names = itertools.count()


# Below this share of all events, looking each line up by key beats reading both tables in order.
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


def declare(session: Session | Connection, stmt: Select[Any] | Any, *, raw_text: bool = False) -> Any:
    """Open a server-side cursor on the statement, straight on the psycopg connection.

    The rows are plain values, so SQLAlchemy's per-row result processing (two thirds of the Python
    time of a full export) has nothing to add. With `raw_text`, the rows come in binary format and
    text columns as the bytes the server sent, in the client encoding (UTF-8, see `export_batches`):
    decoding every stored line to `str` only to encode it again was most of what Python did per row.
    """
    conn = session.connection() if isinstance(session, Session) else session
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw = conn.connection.driver_connection
    assert raw is not None
    # NO SCROLL: PostgreSQL makes a cursor over a sort scrollable by default, and a scrollable sort
    # that spills to disk must merge its runs into one more full copy before the first row; this one
    # is read forward once, so the runs are merged as the rows are fetched (as COPY does).
    cursor = raw.cursor(name=f"export_{next(_cursor_names)}", binary=raw_text, scrollable=False)
    if raw_text:
        # A text value's binary form is its bytes; this cursor's own adapters, not the connection's.
        cursor.adapters.register_loader("text", ByteaBinaryLoader)
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


def valid_line() -> Any:
    """Join condition: the event's stored line, of the current format version."""
    return and_(EventLine.event_id == Event.id, EventLine.fmt == FORMAT_VERSION)


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


def export_batches(session: Session, f: EventFilter, batch: int | None = None) -> Iterator[list[bytes]]:
    """The export's CSV lines, UTF-8 encoded, in timeline order, `batch` at a time, from one snapshot.

    The write path stores each event's line (app.queries.transfer.export_lines); an event without one of the
    current format version (lines not re-made yet after an upgrade or a restore) has its line made here
    with the same formatter, so the bytes are the same either way. One query streams; five more per
    batch that lacks lines.
    """
    if isinstance(session.get_bind(), Engine) and not session.in_transaction():
        # The stream and the per-batch lookups must see the same data, however long the export runs.
        # (A session bound to a connection, in tests, shares that connection's transaction as it is.)
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    for name, value in line_settings(session, f).items():
        session.execute(text(f"SET LOCAL {name} = {value}"))
    # The stored lines are passed on as the bytes the server sends, so those must be UTF-8.
    session.execute(text("SET LOCAL client_encoding = 'UTF8'"))
    batch = batch or BATCH
    cursor = declare(session, line_select(f), raw_text=True)
    # The cursor's plan is fixed now; the per-batch lookups of missing lines want lookups by key. Its
    # memory is not: the sort and the hash table take work_mem when the first FETCH runs them, and at
    # the default they spill the joined lines to disk several times over. So work_mem stays.
    for name in WIDE_LINE_SETTINGS.keys() - EXECUTION_SETTINGS:
        session.execute(text(f"SET LOCAL {name} = {PLAN_SETTINGS.get(name, 'DEFAULT')}"))
    try:
        for rows in fetch_batches(cursor, batch):
            missing = [event_id for event_id, line in rows if line is None]
            if not missing:
                yield [line for _, line in rows]
                continue
            made = {i: line.encode() for i, line in make_lines(session, missing).items()}
            yield [line if line is not None else made.get(event_id, b"") for event_id, line in rows]
    finally:
        cursor.close()
