"""Concurrent writers of reference data and events take locks in one order: they queue, never deadlock."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app.models import Actor, Event, System
from app.schemas import EventInput
from app.services.events import VersionConflict, load_event, update_event
from app.services.reference import ActorEdit, merge_actors, merge_systems, update_actor
from tests.conftest import truncate_all
from tests.factories import event_data, make_event


@pytest.fixture
def pair(engine: Engine) -> Iterator[tuple[int, int]]:
    """Two committed actors, the first with the lower id, named by three events."""
    truncate_all(engine)
    with Session(engine) as s:
        make_event(s, title="One", actors=[{"name": "Low Id", "role": "speaker"}])
        make_event(s, title="Two", actors=[{"name": "High Id", "role": "speaker"}])
        make_event(
            s,
            title="Three",
            actors=[{"name": "Low Id", "role": "speaker"}, {"name": "High Id", "role": "financier"}],
        )
        s.commit()
        low = s.scalars(select(Actor.id).where(Actor.name == "Low Id")).one()
        high = s.scalars(select(Actor.id).where(Actor.name == "High Id")).one()
    assert low < high
    yield low, high
    truncate_all(engine)


def _in_thread(work: Any) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


def _merge_and_commit(engine: Engine, keep_id: int, drop_id: int) -> None:
    """Merge actor `drop_id` into `keep_id` in a session of its own, committed."""
    with Session(engine) as s:
        merge_actors(s, keep_id=keep_id, drop_id=drop_id, who=None)
        s.commit()


def _wait_for_a_lock_wait(engine: Engine, backends: int = 1) -> None:
    """Until `backends` backends of this database wait for a row lock (10 s at most)."""
    deadline = time.monotonic() + 10
    with engine.connect() as c:
        while time.monotonic() < deadline:
            waiting = c.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            c.rollback()
            if waiting >= backends:
                return
            time.sleep(0.02)
    raise AssertionError(f"fewer than {backends} backend(s) waited for a lock")


def _taken(engine: Engine, actor_id: int) -> bool:
    """True when another transaction holds a lock on the actor that FOR UPDATE conflicts with."""
    with engine.connect() as c:
        try:
            c.execute(text("SELECT id FROM actors WHERE id = :id FOR UPDATE NOWAIT"), {"id": actor_id})
            return False
        except OperationalError:  # lock_not_available
            return True
        finally:
            c.rollback()


def test_a_merge_locks_both_entries_in_id_order(engine: Engine, pair: tuple[int, int]) -> None:
    low, high = pair
    with engine.connect() as holder:
        holder.execute(text("SELECT id FROM actors WHERE id = :id FOR UPDATE"), {"id": low})
        thread, errors = _in_thread(lambda: _merge_and_commit(engine, high, low))
        _wait_for_a_lock_wait(engine)
        # Keep has the higher id: the merge waits for the lower one before it takes keep. Taking keep first
        # (as it did) lets the opposite merge take the other and wait for it: a deadlock.
        assert not _taken(engine, high)
        holder.rollback()
    thread.join(30)
    assert not errors
    with Session(engine) as s:
        assert s.get(Actor, low) is None and s.get(Actor, high) is not None


def test_opposite_merges_at_once_queue_and_the_second_finds_its_entry_gone(
    engine: Engine, pair: tuple[int, int]
) -> None:
    low, high = pair
    with Session(engine) as first:
        merge_actors(first, keep_id=low, drop_id=high, who=None)
        thread, errors = _in_thread(lambda: _merge_and_commit(engine, high, low))
        _wait_for_a_lock_wait(engine)
        first.commit()
    thread.join(30)
    assert len(errors) == 1 and isinstance(errors[0], LookupError)  # not a deadlock: high was merged away
    with Session(engine) as s:
        assert s.get(Actor, high) is None and s.get(Actor, low) is not None


def _statements(engine: Engine, work: Any) -> list[str]:
    seen: list[str] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        # The bound values follow the text, so a test can tell which name an INSERT was for.
        seen.append(" ".join(statement.split()) + " -- " + repr(parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    return seen


def _first(statements: list[str], *parts: str) -> int:
    return next(i for i, s in enumerate(statements) if all(p in s for p in parts))


def test_renames_and_merges_lock_the_events_in_id_order_before_rewriting_them(
    engine: Engine, pair: tuple[int, int]
) -> None:
    low, high = pair

    def rename() -> None:
        with Session(engine) as s:
            update_actor(s, low, ActorEdit(name="Renamed", type="person"), None)
            s.commit()

    statements = _statements(engine, rename)
    lock = _first(statements, "FROM events", "ORDER BY events.id FOR NO KEY UPDATE")
    assert lock < _first(statements, "UPDATE actors SET name")  # the name's update touches those events

    statements = _statements(engine, lambda: _merge_and_commit(engine, high, low))
    both = _first(statements, "FROM actors", "ORDER BY actors.id FOR UPDATE")
    lock = _first(statements, "FROM events", "ORDER BY events.id FOR NO KEY UPDATE")
    assert both < lock < _first(statements, "UPDATE event_actors")


def test_an_edit_that_keeps_the_name_locks_no_events(engine: Engine, pair: tuple[int, int]) -> None:
    low, _ = pair

    def retitle() -> None:
        with Session(engine) as s:
            update_actor(s, low, ActorEdit(name="Low Id", type="person", title="Deputy minister"), None)
            s.commit()

    assert not any("FOR NO KEY UPDATE" in s for s in _statements(engine, retitle))


def _event_id(engine: Engine, title: str) -> tuple[int, int]:
    """Id and version of the event with this title."""
    with Session(engine) as s:
        row = s.execute(select(Event.id, Event.version).where(Event.title == title)).one()
        return row.id, row.version


def _race(
    engine: Engine, held_event: int, first: Any, second: Any
) -> tuple[list[BaseException], list[BaseException]]:
    """Hold one event so `first` (a merge or rename) stops holding its entries, start `second`, let go.

    `second` is started once `first` waits for the held event, and the event is let go once `second`
    waits too; both are joined and their errors returned.
    """
    with engine.connect() as holder:
        holder.execute(text("SELECT id FROM events WHERE id = :id FOR UPDATE"), {"id": held_event})
        one, first_errors = _in_thread(first)
        _wait_for_a_lock_wait(engine)
        two, second_errors = _in_thread(second)
        _wait_for_a_lock_wait(engine, backends=2)
        holder.rollback()
    one.join(30)
    two.join(30)
    assert not one.is_alive() and not two.is_alive(), "a writer is still waiting after 30 s"
    return first_errors, second_errors


def _edit_three(engine: Engine) -> Any:
    """An edit of event Three (from its current version) that links Low Id as negotiator."""
    three, version = _event_id(engine, "Three")
    data = EventInput.model_validate(
        event_data(title="Three, edited", actors=[{"name": "Low Id", "role": "negotiator"}])
    )

    def edit() -> None:
        with Session(engine) as s:
            update_event(s, three, data, None, version)
            s.commit()

    return edit


def test_an_edit_during_a_merge_waits_for_it_instead_of_deadlocking(
    engine: Engine, pair: tuple[int, int]
) -> None:
    low, high = pair
    one, _ = _event_id(engine, "One")
    # The merge of Low Id takes both actors, then waits for event One, before event Three. The edit of
    # Three links Low Id: it used to lock Three first and then wait for Low Id, which the merge holds;
    # the merge then waited for Three: a deadlock, shown to the analyst as a 503.
    merge_errors, edit_errors = _race(
        engine, one, lambda: _merge_and_commit(engine, high, low), _edit_three(engine)
    )
    assert not merge_errors
    # The merge moved Three's links and bumped its version: the edit is told so, its input intact.
    assert len(edit_errors) == 1 and isinstance(edit_errors[0], VersionConflict), edit_errors


@pytest.mark.parametrize("table", ["actors", "systems"])
def test_a_new_event_naming_an_entry_being_merged_away_links_the_kept_one(
    engine: Engine, pair: tuple[int, int], table: str
) -> None:
    low, high = pair
    if table == "systems":
        with Session(engine) as s:
            make_event(s, title="Four", systems=[{"designation": "Low Sys"}])
            make_event(s, title="Five", systems=[{"designation": "High Sys"}])
            s.commit()
            low = s.scalars(select(System.id).where(System.designation == "Low Sys")).one()
            high = s.scalars(select(System.id).where(System.designation == "High Sys")).one()
        holder_event, _ = _event_id(engine, "Four")
        name, merge = "Low Sys", merge_systems
        overrides: dict[str, Any] = {"systems": [{"designation": "Low Sys"}]}
    else:
        holder_event, _ = _event_id(engine, "One")
        name, merge = "Low Id", merge_actors
        overrides = {"actors": [{"name": "Low Id", "role": "speaker"}]}
    created: list[int] = []

    def merge_and_commit() -> None:
        with Session(engine) as s:
            merge(s, keep_id=high, drop_id=low, who=None)
            s.commit()

    def create() -> None:
        with Session(engine) as s:
            created.append(make_event(s, title="New", **overrides).id)
            s.commit()

    # The new event found the entry by name before the merge deleted it; its link used to fail the
    # foreign key once the merge committed (a 500). It now waits for the merge and looks again.
    merge_errors, create_errors = _race(engine, holder_event, merge_and_commit, create)
    assert not merge_errors and not create_errors, (merge_errors, create_errors)
    with Session(engine) as s:
        new = load_event(s, created[0])
        linked = [a.actor_id for a in new.actors] if table == "actors" else [x.system_id for x in new.systems]
        assert linked == [high], name


@pytest.mark.parametrize("table", ["actors", "systems"])
def test_two_saves_creating_the_same_new_entry_at_once_share_it(
    engine: Engine, pair: tuple[int, int], table: str
) -> None:
    overrides: dict[str, Any] = (
        {"actors": [{"name": "Brand New", "role": "speaker"}]}
        if table == "actors"
        else {"systems": [{"designation": "Brand New"}]}
    )
    created: list[int] = []

    def second() -> None:
        with Session(engine) as s:
            created.append(make_event(s, title="Second", **overrides).id)
            s.commit()

    with Session(engine) as first:
        make_event(first, title="First", **overrides)  # creates the entry, not committed yet
        # The second save does not see it, inserts the same name and waits on the unique index.
        thread, errors = _in_thread(second)
        _wait_for_a_lock_wait(engine)
        first.commit()
    thread.join(30)
    assert not errors, errors  # it used to fail with a unique violation (a 500)
    with Session(engine) as s:
        model: Any = Actor if table == "actors" else System
        column = model.name if table == "actors" else model.designation
        assert len(s.scalars(select(model).where(column == "Brand New")).all()) == 1
        event = load_event(s, created[0])
        links = event.actors if table == "actors" else event.systems
        assert [link.actor.name if table == "actors" else link.system.designation for link in links] == [
            "Brand New"
        ]


def test_an_edit_during_a_rename_waits_for_it_instead_of_deadlocking(
    engine: Engine, pair: tuple[int, int]
) -> None:
    low, _ = pair
    one, _ = _event_id(engine, "One")
    three, _ = _event_id(engine, "Three")

    def rename() -> None:
        with Session(engine) as s:
            update_actor(s, low, ActorEdit(name="Renamed", type="person"), None)
            s.commit()

    # The rename holds Low Id and waits for One, then wants Three. The edit links Low Id again: it used
    # to lock Three and then wait for Low Id (a deadlock).
    rename_errors, edit_errors = _race(engine, one, rename, _edit_three(engine))
    assert not rename_errors and not edit_errors, (rename_errors, edit_errors)
    with Session(engine) as s:
        assert s.get_one(Actor, low).name == "Renamed"
        # Names are resolved when the edit is saved, after the rename: "Low Id" is a new actor by then.
        linked = load_event(s, three).actors
        assert [a.actor.name for a in linked] == ["Low Id"] and linked[0].actor_id != low


def test_new_entries_are_made_in_one_order_before_the_event_row(
    engine: Engine, pair: tuple[int, int]
) -> None:
    three, version = _event_id(engine, "Three")
    # Two saves making the same two new names in opposite form order would each hold one name's unique
    # slot and wait for the other's: a deadlock. Both now make them sorted, so they queue on the first.
    data = EventInput.model_validate(
        event_data(
            title="Three, edited",
            actors=[{"name": "Zed New", "role": "speaker"}, {"name": "Alpha New", "role": "speaker"}],
            systems=[{"designation": "Zulu Sys"}, {"designation": "Alpha Sys"}],
        )
    )

    def edit() -> None:
        with Session(engine) as s:
            update_event(s, three, data, None, version)
            s.commit()

    statements = _statements(engine, edit)
    order = [
        _first(statements, "INSERT INTO actors", "Alpha New"),
        _first(statements, "INSERT INTO actors", "Zed New"),
        _first(statements, "INSERT INTO systems", "Alpha Sys"),
        _first(statements, "INSERT INTO systems", "Zulu Sys"),
        _first(statements, "FROM events", "FOR UPDATE"),
    ]
    assert order == sorted(order), statements
