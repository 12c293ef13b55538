"""Stored CSV lines: every write stores its events' lines; the export's bytes are the same without them.

These tests commit for real (a re-make locks and writes on its own connections), so each starts and ends
with an empty database.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.csvio import FORMAT_VERSION, read_csv, write_lines
from app.filters import EventFilter
from app.models import Actor, Event, EventLine, System
from app.queries.transfer import export as export_query
from app.queries.transfer import export_lines
from app.queries.transfer.export import export_batches
from app.queries.transfer.imports import commit_import
from app.schemas import SourceInput
from app.services.events import delete_event, event_input, load_event, restore_event, update_event
from app.services.reference import (
    ActorEdit,
    SystemEdit,
    merge_actors,
    merge_systems,
    update_actor,
    update_system,
)
from tests.conftest import truncate_all
from tests.factories import from_mapping, make_event
from tests.test_csv_roundtrip import AWKWARD

FILTERS = [{}, {"kind": "statement"}, {"country": "VEN"}, {"q": "quotes"}, {"actor": "Сергей Рябков"}]


def exported(engine: Engine, f: EventFilter | None = None, bom: bool = False, batch: int = 3) -> bytes:
    """The export as the app streams it (stored lines where current), in a fresh session."""
    with Session(engine) as s:
        return b"".join(write_lines(export_batches(s, f or EventFilter(), batch=batch), bom=bom))


def made(engine: Engine, f: EventFilter | None = None, bom: bool = False) -> bytes:
    """The export with every line made now from the tables (none stored): what stored lines must give."""
    with Session(engine) as s:
        s.execute(text("DELETE FROM event_lines"))
        body = b"".join(write_lines(export_batches(s, f or EventFilter()), bom=bom))
        s.rollback()
    return body


def stored(engine: Engine) -> dict[int, str]:
    with Session(engine) as s:
        return dict(
            s.execute(select(EventLine.event_id, EventLine.line).where(EventLine.fmt == FORMAT_VERSION))
            .tuples()
            .all()
        )


def assert_current(engine: Engine) -> None:
    """Every event (deleted ones too) has a stored line of this version, equal to one made now."""
    with Session(engine) as s:
        ids = list(s.scalars(select(Event.id)))
        fresh = export_lines.make_lines(s, ids)
    assert stored(engine) == fresh


@pytest.fixture
def filled(engine: Engine) -> Iterator[Engine]:
    """The awkward events twice over, made through the write path and committed."""
    truncate_all(engine)
    with Session(engine) as s:
        for data in AWKWARD * 2:
            make_event(s, **data)
        s.commit()
    yield engine
    truncate_all(engine)


def test_the_write_path_stores_every_line(filled: Engine) -> None:
    assert len(stored(filled)) == 2 * len(AWKWARD)
    assert_current(filled)


@pytest.mark.parametrize("params", FILTERS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()) or "all")
@pytest.mark.parametrize("wide", [False, True])
def test_stored_lines_give_the_same_bytes(
    filled: Engine, params: dict[str, str], wide: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export_query, "use_grouped_plan", lambda _s, _f: wide)
    f = from_mapping(params)
    assert exported(filled, f) == made(filled, f)
    assert exported(filled, f, bom=True) == made(filled, f, bom=True)
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines WHERE event_id % 3 = 0"))  # some made on the way
    assert exported(filled, f) == made(filled, f)


def test_stored_lines_are_used(filled: Engine) -> None:
    # Proof that the export reads them: a doctored line shows up (a made line would not have it).
    with filled.begin() as conn:
        conn.execute(text("UPDATE event_lines SET line = 'doctored\r\n' WHERE event_id = 1"))
    assert b"doctored\r\n" in exported(filled)


def test_lines_of_another_format_version_are_not_used_and_are_made_again(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(
            text("UPDATE event_lines SET line = 'old\r\n', fmt = :v WHERE event_id % 2 = 0"),
            {"v": FORMAT_VERSION - 1},
        )
        conn.execute(text("DELETE FROM event_lines WHERE event_id = 1"))  # none at all (a restored backup)
    assert b"old\r\n" not in exported(filled)
    assert exported(filled) == made(filled)
    assert export_lines.remake(filled, batch=2) == len(AWKWARD) + 1
    assert_current(filled)
    assert export_lines.remake(filled) == 0


def _first(s: Session, model: type[Actor] | type[System], name: str) -> int:
    column = Actor.name if model is Actor else System.designation
    return int(s.scalars(select(model.id).where(column == name)).one())


def edit_title(s: Session) -> None:
    event = load_event(s, 1)
    data = event_input(event).model_copy(update={"title": "A new title, with a comma"})
    update_event(s, 1, data, None, event.version)


def add_source(s: Session) -> None:
    event = load_event(s, 3)
    data = event_input(event)
    source = SourceInput(publisher="=Late Press", quote="added later", reliability="B", credibility=2)
    update_event(s, 3, data.model_copy(update={"sources": [*data.sources, source]}), None, event.version)


def rename_actor(s: Session) -> None:
    update_actor(s, _first(s, Actor, "Сергей Рябков"), ActorEdit(name="Sergei Ryabkov; renamed"), None)


def rename_system(s: Session) -> None:
    update_system(s, _first(s, System, "Kalibr"), SystemEdit(designation="Kalibr-NK"), None)


def merge_two_actors(s: Session) -> None:
    merge_actors(s, _first(s, Actor, "Odd; Name"), _first(s, Actor, "Сергей Рябков"), None)


def merge_two_systems(s: Session) -> None:
    keep, drop = s.scalars(select(System.id).order_by(System.id).limit(2)).all()
    merge_systems(s, keep, drop, None)


def soft_delete(s: Session) -> None:
    delete_event(s, 3, None)


def soft_delete_and_restore(s: Session) -> None:
    delete_event(s, 3, None)
    s.commit()
    restore_event(s, 3, None)


def import_rows(s: Session) -> None:
    parsed = read_csv(made(s.get_bind()).decode())  # type: ignore[arg-type]
    assert parsed.ok
    commit_import(s, parsed.rows, None, uuid.uuid4())


CHANGES: list[Callable[[Session], None]] = [
    edit_title,
    add_source,
    rename_actor,
    rename_system,
    merge_two_actors,
    merge_two_systems,
    soft_delete,
    soft_delete_and_restore,
    import_rows,
]


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.__name__)
def test_every_write_stores_current_lines(filled: Engine, change: Callable[[Session], None]) -> None:
    before = exported(filled)
    with Session(filled) as s:
        change(s)
        s.commit()
    after = exported(filled)
    assert after != before  # the change shows in the CSV, so a stale line would be caught
    assert after == made(filled)
    assert_current(filled)


def test_an_unrelated_edit_of_an_actor_writes_no_line(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("UPDATE event_lines SET line = 'kept\r\n'"))
    with Session(filled) as s:
        actor_id = _first(s, Actor, "Сергей Рябков")
        # Only what a line shows counts: an actor's title is not in the CSV.
        update_actor(s, actor_id, ActorEdit(name="Сергей Рябков", title="Deputy minister"), None)
        s.commit()
    assert set(stored(filled).values()) == {"kept\r\n"}


def test_a_hard_deleted_event_takes_its_line_along(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM events WHERE id = 2"))
        assert conn.scalar(text("SELECT count(*) FROM event_lines WHERE event_id = 2")) == 0
    assert exported(filled) == made(filled)


def test_one_export_reads_one_snapshot(filled: Engine) -> None:
    """A change committed while an export streams does not show half-way through it."""
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines"))  # every batch then makes its lines
    before = made(filled)
    with Session(filled) as s:
        last = s.scalar(select(Event.id).order_by(Event.date_start, Event.id).limit(1))  # streamed last
    with Session(filled) as s:
        stream = write_lines(export_batches(s, EventFilter(), batch=2))
        head = next(stream) + next(stream)
        with Session(filled) as w:
            w.execute(text("DELETE FROM events WHERE id = :id"), {"id": last})
            edit_title(w)
            w.commit()
        body = head + b"".join(stream)
    assert body == before
    assert made(filled) != before


def test_a_remake_waits_for_a_writer_of_its_events(filled: Engine) -> None:
    """A re-make never stores a line made from data a concurrent write is changing."""
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines WHERE event_id IN (1, 3)"))
    writer = Session(filled)
    add_source(writer)  # holds event 3's row lock until it commits
    done: list[int] = []
    remaking = threading.Thread(target=lambda: done.append(export_lines.remake(filled)))
    remaking.start()
    remaking.join(1.0)
    assert remaking.is_alive()  # waiting for the writer
    writer.commit()
    writer.close()
    remaking.join(30)
    assert done == [1]  # event 1; the writer stored event 3's line itself
    assert_current(filled)
    assert b"=Late Press" in exported(filled)


def test_the_start_up_remake_reports_its_state(filled: Engine) -> None:
    with filled.begin() as conn:
        conn.execute(text("DELETE FROM event_lines"))
    export_lines.remake_at_start(filled)
    assert export_lines.state() == "ready"
    assert_current(filled)
