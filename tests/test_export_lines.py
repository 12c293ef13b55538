"""Stored CSV lines: the export gives the same bytes with them, and no change leaves a stale one in use.

These tests commit for real (the filler reads on its own connections, and a row's xmin only tells
versions apart across transactions), so each starts and ends with an empty database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.csvio import write_lines, write_rows
from app.events_service import delete_event, restore_event
from app.filters import EventFilter, from_mapping
from app.models import Actor, Event, EventLine, Source, System
from app.queries import export as export_query
from app.queries import export_lines
from app.queries.export import export_batches, export_rows
from app.reference_service import merge_actors
from tests.conftest import truncate_all
from tests.factories import make_event
from tests.test_csv_roundtrip import AWKWARD

ADD_COUNTRY = text(
    "INSERT INTO event_countries (event_id, country_code, role, position) VALUES (:id, :code, :role, 9)"
)
FILTERS = [{}, {"kind": "statement"}, {"country": "VEN"}, {"q": "quotes"}, {"actor": "Сергей Рябков"}]


def computed(s: Session, f: EventFilter, bom: bool = False) -> bytes:
    """The export made from cells alone: what the stored lines must reproduce."""
    return b"".join(write_rows(export_rows(s, f), bom=bom))


def exported(engine: Engine, f: EventFilter | None = None, bom: bool = False, batch: int = 3) -> bytes:
    """The export as the app streams it (stored lines where valid), in a fresh session."""
    with Session(engine) as s:
        return b"".join(write_lines(export_batches(s, f or EventFilter(), batch=batch), bom=bom))


def reference(engine: Engine, f: EventFilter | None = None, bom: bool = False) -> bytes:
    with Session(engine) as s:
        return computed(s, f or EventFilter(), bom=bom)


def stale(engine: Engine) -> int:
    with engine.connect() as conn:
        return len(export_lines.stale_ids(conn))


@pytest.fixture
def filled(engine: Engine) -> Iterator[Engine]:
    """The awkward events twice over, committed, with every line made."""
    truncate_all(engine)
    with Session(engine) as s:
        for data in AWKWARD * 2:
            make_event(s, **data)
        s.commit()
    assert stale(engine) == 2 * len(AWKWARD)
    assert export_lines.fill(engine) == 2 * len(AWKWARD)
    assert stale(engine) == 0
    yield engine
    truncate_all(engine)


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "all")
def test_stored_lines_give_the_same_bytes(filled: Engine, params: dict[str, str]) -> None:
    f = from_mapping(params)
    assert exported(filled, f) == reference(filled, f)
    assert exported(filled, f, bom=True) == reference(filled, f, bom=True)


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "all")
def test_the_wide_plan_gives_the_same_bytes(
    filled: Engine, params: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every filter here matches a large share of these few events once the floor is lifted."""
    monkeypatch.setattr(export_query, "GROUPED_MIN_ROWS", 1)
    f = from_mapping(params)
    with Session(filled) as s:
        wide = export_query.line_settings(s, f) is export_query.WIDE_LINE_SETTINGS
    if not params:
        assert wide  # at least the unfiltered export takes the wide plan here
    assert exported(filled, f) == reference(filled, f)
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines WHERE event_id % 3 = 0"))  # some made on the way
    assert exported(filled, f) == reference(filled, f)


def test_lines_are_stored_and_used(filled: Engine) -> None:
    with Session(filled) as s:
        lines = s.scalars(select(EventLine.line)).all()
    assert len(lines) == 2 * len(AWKWARD)
    # Proof that the export reads them: a doctored line shows up (made lines would not have it).
    with filled.begin() as conn:
        conn.execute(text("UPDATE event_lines SET line = 'doctored\r\n' WHERE event_id = 1"))
    assert b"doctored\r\n" in exported(filled)


def test_without_lines_the_export_makes_them(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines WHERE event_id % 2 = 0"))
    assert stale(filled) == len(AWKWARD)
    assert exported(filled) == reference(filled)


def test_a_new_format_makes_every_line_stale(filled: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_query, "FORMAT", export_query.FORMAT + 1)
    assert stale(filled) == 2 * len(AWKWARD)
    assert exported(filled) == reference(filled)
    assert export_lines.fill(filled) == 2 * len(AWKWARD)
    assert stale(filled) == 0


def _first_with(s: Session, what: str) -> int:
    return int(s.scalar(text(f"SELECT min(event_id) FROM {what}")) or 0)


def edit_title(s: Session) -> None:
    s.get_one(Event, 1).title = "A new title, with a comma"


def add_source(s: Session) -> None:
    s.add(Source(event_id=3, publisher="=Late Press", quote="added later", reliability="B", credibility=2))


def rename_actor(s: Session) -> None:
    s.scalars(select(Actor).where(Actor.name == "Сергей Рябков")).one().name = "Sergei Ryabkov; renamed"


def rename_system(s: Session) -> None:
    s.scalars(select(System).where(System.designation == "Kalibr")).one().designation = "Kalibr-NK"


def merge_two_actors(s: Session) -> None:
    keep = s.scalars(select(Actor).where(Actor.name == "Odd; Name")).one()
    drop = s.scalars(select(Actor).where(Actor.name == "Сергей Рябков")).one()
    merge_actors(s, keep.id, drop.id, None)


def soft_delete_and_restore(s: Session) -> None:
    delete_event(s, 3, None)
    s.commit()
    restore_event(s, 3, None)


def sql_add_country(s: Session) -> None:
    s.execute(ADD_COUNTRY, {"id": 5, "code": "FRA", "role": "target"})


def sql_change_quantity(s: Session) -> None:
    s.execute(text("UPDATE event_systems SET quantity = 77 WHERE event_id = 3"))


def sql_move_link(s: Session) -> None:
    s.execute(text("UPDATE event_actors SET event_id = 5 WHERE event_id = 3"))  # 5 has no actors


def sql_move_source(s: Session) -> None:
    s.execute(text("UPDATE sources SET event_id = 5 WHERE event_id = 2"))


def add_source_in_a_savepoint(s: Session) -> None:
    with s.begin_nested():
        add_source(s)


def sql_delete_sources(s: Session) -> None:
    s.execute(text("DELETE FROM sources WHERE event_id = (SELECT min(event_id) FROM sources)"))


CHANGES: list[Callable[[Session], None]] = [
    edit_title,
    add_source,
    rename_actor,
    rename_system,
    merge_two_actors,
    soft_delete_and_restore,
    sql_add_country,
    sql_change_quantity,
    sql_move_link,
    sql_delete_sources,
    sql_move_source,
    add_source_in_a_savepoint,
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__)
def test_no_change_leaves_a_stale_line_in_use(filled: Engine, change: Callable[[Session], None]) -> None:
    before = exported(filled)
    with Session(filled) as s:
        change(s)
        s.commit()
    after = reference(filled)
    assert after != before  # the change shows in the CSV, so a stale line would be caught
    assert stale(filled) > 0
    assert exported(filled) == after
    export_lines.fill(filled)
    assert stale(filled) == 0
    assert exported(filled) == after


def test_a_deleted_event_takes_its_line_along(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE id = 2"))
        assert conn.scalar(text("SELECT count(*) FROM event_lines WHERE event_id = 2")) == 0
    assert stale(filled) == 0
    assert exported(filled) == reference(filled)


@pytest.mark.parametrize("table", ["event_actors", "sources", "actors CASCADE", "systems CASCADE"])
def test_emptying_a_link_or_name_table_drops_every_line(filled: Engine, table: str) -> None:
    with filled.begin() as conn:
        conn.execute(text(f"TRUNCATE {table}"))
    assert stale(filled) == 2 * len(AWKWARD)
    assert exported(filled) == reference(filled)


def test_an_unrelated_rename_leaves_the_lines_alone(filled: Engine) -> None:
    with Session(filled) as s:
        # Only what a line shows counts: an actor's title is not in the CSV.
        s.scalars(select(Actor).where(Actor.name == "Сергей Рябков")).one().title = "Deputy minister"
        s.commit()
    assert stale(filled) == 0


def test_links_written_with_their_new_event_do_not_touch_it(engine: Engine) -> None:
    truncate_all(engine)
    try:
        with Session(engine) as s:
            event_id = make_event(s, countries=[]).id
            ctid = s.scalar(text("SELECT ctid::text FROM events WHERE id = :id"), {"id": event_id})
            s.execute(ADD_COUNTRY, {"id": event_id, "code": "FRA", "role": "supplier"})
            # No second row version: an import's links cost no update of their events.
            assert s.scalar(text("SELECT ctid::text FROM events WHERE id = :id"), {"id": event_id}) == ctid
            s.commit()
        with Session(engine) as s:
            s.execute(ADD_COUNTRY, {"id": event_id, "code": "DEU", "role": "target"})
            assert s.scalar(text("SELECT ctid::text FROM events WHERE id = :id"), {"id": event_id}) != ctid
            s.rollback()
    finally:
        truncate_all(engine)


def test_a_line_made_before_a_concurrent_change_is_never_used(filled: Engine) -> None:
    """The filler reads, a writer commits, the filler writes what it read: the old line must not count."""
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines WHERE event_id = 3"))
    with filled.connect() as reader, filled.connect() as writer:
        with reader.begin():
            batches = list(export_lines._lines(reader, [3]))  # the snapshot is taken here
        assert [row[0] for batch in batches for row in batch] == [3]
        with Session(filled) as s:
            add_source(s)
            s.commit()
        with writer.begin():
            for batch in batches:
                export_lines._write(writer, batch)
    assert stale(filled) == 1
    assert exported(filled) == reference(filled)
    assert b"=Late Press" in exported(filled)  # the new source shows


def test_one_export_reads_one_snapshot(filled: Engine) -> None:
    """A change committed while an export streams does not show half-way through it."""
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines"))  # every batch then looks its rows up again
    before = reference(filled)
    with Session(filled) as s:
        last = s.scalar(select(Event.id).order_by(Event.date_start, Event.id).limit(1))  # streamed last
    with Session(filled) as s:
        stream = write_lines(export_batches(s, EventFilter(), batch=2))
        head = next(stream) + next(stream)
        with Session(filled) as w:
            w.execute(text("DELETE FROM events WHERE id = :id"), {"id": last})
            w.get_one(Event, 4).title = "Changed while the export ran"
            w.commit()
        body = head + b"".join(stream)
    assert body == before
    assert reference(filled) != before


def test_the_filler_thread_keeps_up(filled: Engine) -> None:
    with Session(filled) as s:
        edit_title(s)
        s.commit()
    assert stale(filled) == 1
    filler = export_lines.Filler(filled)
    filler.POLL_SECONDS = 0.05
    filler.start()
    try:
        deadline = time.monotonic() + 30
        while (stale(filled) or filler.state != "ready") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stale(filled) == 0
        assert filler.state == "ready"
    finally:
        filler.stop()
    assert exported(filled) == reference(filled)


def test_one_filler_at_a_time(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines"))
    with filled.connect() as holder:
        assert holder.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": export_lines._LOCK_KEY})
        assert export_lines.fill(filled) is None  # another process is at it
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": export_lines._LOCK_KEY})
        holder.commit()
    assert export_lines.fill(filled) == 2 * len(AWKWARD)


def test_the_filler_is_not_ready_while_another_process_fills(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines"))
    filler = export_lines.Filler(filled)
    filler.POLL_SECONDS = 0.05
    with filled.connect() as holder:
        assert holder.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": export_lines._LOCK_KEY})
        filler.start()
        try:
            time.sleep(0.5)  # ten polls, each finding the lock taken
            assert filler.state == "filling"
            assert stale(filled) == 2 * len(AWKWARD)
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": export_lines._LOCK_KEY})
            holder.commit()
            deadline = time.monotonic() + 30
            while filler.state != "ready" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert filler.state == "ready"
            assert stale(filled) == 0  # made by this filler once the other let go
        finally:
            filler.stop()


def test_the_filler_logs_one_line_per_retry_while_the_database_is_away(
    filled: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: every poll fails to connect, as during a database restart.
    away = create_engine(filled.url.set(host="127.0.0.1", port=1), connect_args={"connect_timeout": 2})
    filler = export_lines.Filler(away)
    filler.POLL_SECONDS = 0.05
    with caplog.at_level(logging.WARNING, logger="app.queries.export_lines"):
        filler.start()
        try:
            deadline = time.monotonic() + 10
            while len(caplog.records) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            filler.stop()
            away.dispose()
    assert len(caplog.records) >= 2  # it keeps trying
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)
    assert "database unavailable" in caplog.records[0].getMessage()
    assert filler.state == "filling"


def test_many_events_use_the_grouped_read(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    truncate_all(engine)
    try:
        with Session(engine) as s:
            for data in AWKWARD * 3:
                make_event(s, **data)
            s.commit()
        monkeypatch.setattr(export_query, "GROUPED_MIN_ROWS", 5)
        monkeypatch.setattr(export_lines, "WRITE_BATCH", 4)  # several write transactions
        reads: list[object] = []
        real = export_lines._lines
        monkeypatch.setattr(export_lines, "_lines", lambda conn, ids: reads.append(ids) or real(conn, ids))
        assert export_lines.fill(engine) == 3 * len(AWKWARD)
        assert reads == [None]  # the grouped read of every stale event, not a list of ids
        assert stale(engine) == 0
        assert exported(engine) == reference(engine)
    finally:
        truncate_all(engine)


def test_the_format_number_follows_the_cells_query(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines made by older code stop counting when the SQL that makes their cells changes."""
    before = export_query.format_fingerprint()
    assert before == export_query.FORMAT
    real = export_query.export_select
    monkeypatch.setattr(
        export_query, "export_select", lambda f, grouped=False: real(f, grouped=grouped).limit(7)
    )
    assert export_query.format_fingerprint() != before
    monkeypatch.setattr(export_query, "export_select", real)
    monkeypatch.setattr(export_query, "LINE_FORMAT", export_query.LINE_FORMAT + 1)
    assert export_query.format_fingerprint() != before
