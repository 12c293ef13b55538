"""Stored CSV lines: made for every live event that lacks a valid one, so an export mostly just reads them.

A line is valid while its event row keeps the xmin it was made from (migration 0004's triggers move the
xmin when links or the names they show change). A line made from an older snapshot than a concurrent
write therefore never counts, whatever the timing: no locks are needed between the filler and writers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, Integer, any_, bindparam, exists, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.csvio import LineFormatter
from app.filters import EventFilter
from app.models import Event
from app.queries import export as export_query
from app.queries.export import (
    PLAN_SETTINGS,
    XMIN,
    cells_of,
    declare,
    export_select,
    fetch_batches,
    use_grouped_plan_for,
    valid_line,
)

log = logging.getLogger(__name__)

# Lines written per transaction: a few MB, so a long fill never holds one long write transaction.
WRITE_BATCH = 20_000
# One filler at a time across processes (several app processes, the CLI): the key of an advisory lock.
_LOCK_KEY = 0x5B_E7_11_E5

# Emptied at each commit, so a pooled connection does not keep the last batch.
_STAGE = text(
    "CREATE TEMP TABLE IF NOT EXISTS _event_lines (event_id int, src_xmin bigint, line text)"
    " ON COMMIT DELETE ROWS"
)
# Events deleted since the lines were made are left out (their lines would break the foreign key).
_MERGE = text(
    "INSERT INTO event_lines (event_id, src_xmin, fmt, line)"
    " SELECT s.event_id, s.src_xmin, :fmt, s.line FROM _event_lines s JOIN events e ON e.id = s.event_id"
    " ON CONFLICT (event_id) DO UPDATE"
    " SET src_xmin = excluded.src_xmin, fmt = excluded.fmt, line = excluded.line"
)


def _stale() -> Any:
    """Live events without a valid stored line."""
    return ~exists().where(valid_line())


def stale_ids(conn: Connection) -> list[int]:
    """The live events that lack a valid stored line (one anti-join of events and lines)."""
    return list(conn.scalars(select(Event.id).where(Event.deleted_at.is_(None), _stale())))


def _lines(conn: Connection, ids: list[int] | None) -> Iterator[list[tuple[int, int, str]]]:
    """(event id, xmin, line) for the stale events, a batch at a time, from one query.

    With `ids` (a few), those events by key; without, every stale event by aggregating the link tables.
    """
    for name, value in PLAN_SETTINGS.items():
        conn.execute(text(f"SET LOCAL {name} = {value}"))
    if ids is None:
        stmt = export_select(EventFilter(), grouped=True).add_columns(XMIN).where(_stale()).order_by(None)
    else:
        picked = Event.id == any_(bindparam("stale_ids", ids, type_=ARRAY(Integer)))
        stmt = export_select(EventFilter()).add_columns(XMIN).where(_stale(), picked).order_by(None)
    cursor = declare(conn, stmt)
    formatter = LineFormatter()
    try:
        for rows in fetch_batches(cursor, WRITE_BATCH):
            yield [(int(row[0]), int(row[-1]), formatter(cells_of(row[:-1]))) for row in rows]
    finally:
        cursor.close()


def _write(conn: Connection, batch: list[tuple[int, int, str]]) -> None:
    """Upsert one batch of lines through COPY into a temporary table (emptied when its transaction ends)."""
    conn.execute(_STAGE)
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor().copy("COPY _event_lines (event_id, src_xmin, line) FROM STDIN") as copy:
        for row in batch:
            copy.write_row(row)
    conn.execute(_MERGE, {"fmt": export_query.FORMAT})


def fill(engine: Engine) -> int | None:
    """Make and store the line of every live event that lacks a valid one; how many were written.

    Reads on one connection and writes on another, a batch per transaction. Returns None at once when
    another process is filling (its lines are not all made yet).
    """
    # A session lock outside any transaction: nothing idles in a transaction for the length of a fill.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_conn:
        if not lock_conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}):
            return None
        try:
            return _fill_locked(engine)
        finally:
            try:
                lock_conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            except Exception:
                # Closing the connection for good releases the lock: a pooled one would keep it.
                lock_conn.invalidate()
                raise


def _fill_locked(engine: Engine) -> int:
    """The fill itself, under the advisory lock: stale ids once, then their lines batch by batch."""
    started = time.monotonic()
    with engine.connect() as reader, engine.connect() as writer, reader.begin():
        ids: list[int] | None = stale_ids(reader)
        if not ids:
            return 0
        with Session(bind=reader) as session:
            # Few: look them up by key. Many: aggregate each link table once (the export's own rule).
            if use_grouped_plan_for(session, len(ids)):
                ids = None
        written = 0
        for batch in _lines(reader, ids):
            with writer.begin():
                _write(writer, batch)
            written += len(batch)
    log.info("export lines: %d made in %.1f s", written, time.monotonic() - started)
    return written


class Filler:
    """A background thread that keeps the stored lines made, after start and after every data change."""

    # How often the data version is compared (one indexed max()). A fill after a change starts with an
    # anti-join of events and lines (about a second at a million events), so changes are taken in
    # groups; meanwhile an export makes the few missing lines itself.
    POLL_SECONDS = 15.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.filling = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-lines", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def state(self) -> str:
        return "filling" if self.filling else "ready"

    def _run(self) -> None:
        from app.queries.cache import data_version

        seen: Any = None
        while not self._stop.is_set():
            try:
                with Session(bind=self.engine) as session:
                    version = data_version(session)
                if version != seen:
                    self.filling = True
                    if fill(self.engine) is None:
                        # Another process is filling: not ready until it is done; try again at the next poll.
                        self._stop.wait(self.POLL_SECONDS)
                        continue
                    seen = version
                self.filling = False
            except OperationalError as exc:  # a database restart or a lost connection: one line, not a trace
                log.warning("export lines: database unavailable, retrying: %s", str(exc.orig).strip())
            except Exception:  # anything else is a bug worth its traceback; still retry at the next poll
                log.exception("export lines: fill failed; retrying")
            self._stop.wait(self.POLL_SECONDS)


_filler: Filler | None = None


def start(engine: Engine) -> None:
    """Start this process's filler (the app's lifespan)."""
    global _filler
    _filler = Filler(engine)
    _filler.start()


def stop() -> None:
    """Stop this process's filler, if any."""
    global _filler
    if _filler is not None:
        _filler.stop()
        _filler = None


def state() -> str:
    """`filling` until every live event has a valid line, then `ready`; `off` when no filler runs here."""
    return _filler.state if _filler is not None else "off"
