"""`q` knows the catalogue: an event is found by the names and aliases of its countries, actors and systems.

The names are in the stored search document (app.queries.search_document), so every output agrees for
such a q (page, partial, count, export, API, command line), and the documents stay exact when an actor
or system is renamed, given aliases or merged, in the same transaction; the import and the seed write
the same document the form does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.csvio import ParsedRow
from app.filters import EventFilter
from app.models import Event, System
from app.queries.search_document import refresh_documents
from app.queries.transfer.imports import commit_import
from app.schemas import EventInput
from app.services.reference import (
    ActorEdit,
    SystemEdit,
    merge_actors,
    merge_systems,
    update_actor,
    update_system,
)
from tests.conftest import Client, truncate_all
from tests.factories import event_data, make_actor, make_event, make_system
from tests.test_filter_policy import (
    HX,
    cli_export,
    csv_ids,
    expected_ids,
    export_link,
    page_ids,
    total_block,
    total_of,
)


@pytest.fixture(scope="module")
def catalogue_corpus(engine: Engine) -> Iterator[dict[str, int]]:
    """Events whose text never names what they link (the command line reads through its own connection)."""
    truncate_all(engine)
    with Session(engine) as s:
        make_actor(s, "Dmitry Peskov", ["Дмитрий Песков"])
        make_actor(s, "Nicolás Maduro")
        make_system(s, "Shahed-136", ["Geran-2"])
        events = {
            "drones": make_event(
                s,
                title="Drones handed over",
                summary="A consignment of loitering munitions arrives.",
                kind="transfer",
                date="2024-05",
                countries=[{"code": "IRN", "role": "supplier"}, {"code": "RUS", "role": "recipient"}],
                actors=[],
                systems=[{"designation": "Shahed-136"}],
                sources=[{"publisher": "Reuters", "url": "https://reuters.com/1", "reliability": "B"}],
            ),
            "kremlin": make_event(
                s,
                title="Kremlin comments on deliveries",
                summary="A spokesman declined to give details.",
                kind="statement",
                date="2025-10-14",
                countries=[{"code": "RUS", "role": "supplier"}, {"code": "BLR", "role": "recipient"}],
                actors=[{"name": "Dmitry Peskov", "role": "speaker"}],
                systems=[],
                sources=[{"publisher": "TASS", "url": "https://tass.com/1", "reliability": "C"}],
            ),
            "caribbean": make_event(
                s,
                title="Shipment announced",
                summary="Arms arrive in the Caribbean.",
                kind="offer",
                date="2025-03",
                countries=[{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
                actors=[{"name": "Nicolás Maduro", "role": "requester"}],
                systems=[],
                sources=[{"publisher": "TASS", "url": "https://tass.com/2", "reliability": "C"}],
            ),
            "unrelated": make_event(
                s,
                title="Machine tools offered",
                summary="Lathes and presses.",
                kind="offer",
                date="2023-01-01",
                countries=[{"code": "CHN", "role": "supplier"}, {"code": "PRK", "role": "recipient"}],
                actors=[],
                systems=[],
                sources=[{"publisher": "Kyiv Independent", "url": "https://kyiv.example/1"}],
            ),
        }
        s.commit()
        ids = {k: e.id for k, e in events.items()}
    yield ids
    truncate_all(engine)


# q → the events it must find, by their catalogue names only.
CASES = {
    "Shahed": {"drones"},
    "Geran": {"drones"},  # an alias
    "Shahed-136": {"drones"},
    "Peskov": {"kremlin"},
    "Песков": {"kremlin"},  # an alias in Cyrillic
    "Dmitry Peskov": {"kremlin"},
    "Venezuela": {"caribbean"},
    "VEN": {"caribbean"},
    "Iran": {"drones"},
    "Bolivarian": {"caribbean"},  # pycountry's official name
    "Nicolas Maduro": {"caribbean"},  # folded: accent-free
    "Nicolás": {"caribbean"},
    "Peskov Venezuela": set(),  # AND across events finds none
}


@pytest.mark.parametrize("q", list(CASES))
def test_every_output_agrees_for_a_catalogue_q(
    q: str, catalogue_corpus: dict[str, int], client: Client, db: Session, capsysbinary: Any
) -> None:
    client.login("viewer")
    query = urlencode({"q": q})
    rows = {catalogue_corpus[k] for k in CASES[q]}
    assert expected_ids(db, query) == rows
    page = client.get(f"/?{query}")
    partial = client.get(f"/?{query}", headers=HX)
    assert page.status_code == partial.status_code == 200
    assert page_ids(page.text) == page_ids(partial.text) == rows
    assert total_of(total_block(client, page.text)) == len(rows)
    assert total_of(client.get(f"/timeline/count?{query}").text) == len(rows)
    if rows:
        exported = client.get(export_link(total_block(client, page.text)))
        assert exported.status_code == 200 and csv_ids(exported.content) == rows
    api = client.get(f"/api/v1/events?{query}&limit=200")
    export = client.get(f"/export.csv?{query}")
    code, out, _ = cli_export(query, capsysbinary)
    assert api.status_code == 200 and {e["id"] for e in api.json()["items"]} == rows
    assert export.status_code == 200 and csv_ids(export.content) == rows
    assert code == 0 and out == export.content


def test_text_ranks_above_catalogue_names(catalogue_corpus: dict[str, int], db: Session) -> None:
    """The catalogue names weigh least (D): an event saying "Shahed" in its title outranks one linking it."""
    weights = dict(
        db.execute(
            text(
                "SELECT id, ts_rank(search_vector, websearch_to_tsquery('english', 'Shahed')) FROM events"
                " WHERE id = ANY(:ids)"
            ),
            {"ids": [catalogue_corpus["drones"]]},
        ).all()
    )
    titled = make_event(db, title="Shahed drones shot down", summary="", systems=[], actors=[])
    ranked = db.scalar(
        text(
            "SELECT ts_rank(search_vector, websearch_to_tsquery('english', 'Shahed')) FROM events"
            " WHERE id = :i"
        ),
        {"i": titled.id},
    )
    assert ranked > weights[catalogue_corpus["drones"]] > 0


# ---- the documents stay exact -------------------------------------------------------------------------


def found(db: Session, q: str) -> set[int]:
    """Events whose stored document matches q, in the session's (uncommitted) transaction."""
    return set(
        db.scalars(
            select(Event.id).where(Event.search_vector.op("@@")(text("websearch_to_tsquery('english', :q)"))),
            {"q": q},
        )
    )


def stored(db: Session, ids: list[int]) -> dict[int, str]:
    """The stored documents (with positions and weights) of some events."""
    return dict(
        db.execute(text("SELECT id, search_vector::text FROM events WHERE id = ANY(:ids)"), {"ids": ids})
        .tuples()
        .all()
    )


def assert_exact(db: Session, ids: list[int]) -> None:
    """The stored documents are what recomputing them from scratch gives."""
    before = stored(db, ids)
    refresh_documents(db, ids)
    assert stored(db, ids) == before


def test_actor_rename_alias_change_and_merge(db: Session) -> None:
    make_actor(db, "Zorblat Quince")
    make_actor(db, "Hollin Dask")
    first = make_event(db, title="First", actors=[{"name": "Zorblat Quince", "role": "speaker"}])
    second = make_event(db, title="Second", actors=[{"name": "Hollin Dask", "role": "speaker"}])
    assert found(db, "Zorblat") == {first.id}
    actor = first.actors[0].actor

    update_actor(db, actor.id, ActorEdit(name="Vexmoor Quince"), None)
    assert found(db, "Zorblat") == set() and found(db, "Vexmoor") == {first.id}

    update_actor(db, actor.id, ActorEdit(name="Vexmoor Quince", aliases=["Krelling"]), None)
    assert found(db, "Krelling") == {first.id}
    update_actor(db, actor.id, ActorEdit(name="Vexmoor Quince", aliases=[]), None)
    assert found(db, "Krelling") == set()

    merge_actors(db, actor.id, second.actors[0].actor_id, None)
    # The moved event now names Vexmoor; the kept actor's events answer to the merged name (an alias).
    assert found(db, "Vexmoor") == {first.id, second.id}
    assert found(db, "Hollin Dask") == {first.id, second.id}
    assert_exact(db, [first.id, second.id])


def test_system_rename_alias_change_and_merge(db: Session) -> None:
    make_system(db, "Quarnok-7")
    make_system(db, "Belvane-3")
    first = make_event(db, title="First", systems=[{"designation": "Quarnok-7"}])
    second = make_event(db, title="Second", systems=[{"designation": "Belvane-3"}])
    system = first.systems[0].system

    update_system(db, system.id, SystemEdit(designation="Tressik-7"), None)
    assert found(db, "Quarnok") == set() and found(db, "Tressik") == {first.id}
    update_system(db, system.id, SystemEdit(designation="Tressik-7", aliases=["Ombrel"]), None)
    assert found(db, "Ombrel") == {first.id}

    merge_systems(db, system.id, second.systems[0].system_id, None)
    assert found(db, "Tressik") == {first.id, second.id}
    assert found(db, "Belvane") == {first.id, second.id}
    assert_exact(db, [first.id, second.id])


def test_the_form_writes_exact_documents(db: Session) -> None:
    make_system(db, "Dravnik-4", ["Skelm-4"])
    event = make_event(
        db,
        countries=[{"code": "IRN", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
        systems=[{"designation": "Skelm-4"}],
        actors=[{"name": "Brand New Person", "role": "speaker"}],
    )
    assert event.id in found(db, "Dravnik") & found(db, "Venezuela") & found(db, "Brand New Person")
    assert_exact(db, [event.id])


def test_import_writes_the_same_document_as_refresh(db: Session) -> None:
    """The bulk path (catalogue text staged from Python) gives exactly the SQL-built document."""
    make_system(db, "Dravnik-4", ["Skelm-4"])
    make_actor(db, "Ivan Tolstykh", ["Иван Толстых"])
    data = EventInput.model_validate(
        event_data(
            title="Imported",
            countries=[{"code": "IRN", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
            actors=[
                {"name": "Иван Толстых", "role": "speaker"},
                {"name": "A Name The Import Creates", "role": "speaker"},
            ],
            systems=[{"designation": "skelm-4"}, {"designation": "Brand-New-System"}],
        )
    )
    ids = commit_import(db, [ParsedRow(2, data)], None, uuid.uuid4()).event_ids
    assert set(ids) <= found(db, "Dravnik") & found(db, "Tolstykh") & found(db, "Venezuela")
    assert set(ids) <= found(db, "Creates") & found(db, "Brand-New-System")
    assert_exact(db, ids)


def test_seeded_documents_are_exact(engine: Engine) -> None:
    """seed-synthetic stages the catalogue text in Python: the same documents refresh_documents makes."""
    from app.demo.synthetic import seed_synthetic
    from tests.test_synthetic import CONNINFO

    seeded = seed_synthetic(CONNINFO, 300, seed=3, batch_size=120)
    try:
        with Session(engine) as s:
            ids = list(range(seeded.first_id, seeded.last_id + 1))
            assert_exact(s, ids)
            code = s.scalar(
                text("SELECT country_code FROM event_countries WHERE event_id = :i"), {"i": ids[0]}
            )
            assert ids[0] in found(s, code)
            s.rollback()
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("DELETE FROM events WHERE id BETWEEN :a AND :b"),
                {"a": seeded.first_id, "b": seeded.last_id},
            )


def test_migration_0012_recomputes_every_document() -> None:
    """Downgrading past 0012 leaves text-only documents; upgrading puts the catalogue names back."""
    from app import migrate
    from tests.test_backup import scratch_database

    with scratch_database("signalboard_catsearch") as eng:
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        with Session(eng) as s:
            make_system(s, "Shahed-136", ["Geran-2"])
            event = make_event(s, title="Drones", summary="", systems=[{"designation": "Geran-2"}])
            deleted = make_event(s, title="Gone", summary="", systems=[{"designation": "Shahed-136"}])
            s.execute(text("UPDATE events SET deleted_at = now() WHERE id = :i"), {"i": deleted.id})
            s.commit()
            ids = [event.id, deleted.id]
            with_names = stored(s, ids)
        with eng.connect() as conn:
            migrate.downgrade(conn, "0011")  # below 0012, whatever came after it
            conn.commit()
        with Session(eng) as s:
            assert found(s, "Shahed") == set() and found(s, "Drones") == {event.id}
        with eng.connect() as conn:
            migrate.upgrade(conn)
            conn.commit()
        with Session(eng) as s:
            assert found(s, "Shahed") == set(ids)  # deleted ones too: a restore finds them again
            assert stored(s, ids) == with_names


def test_families_add_the_ancestors_names(db: Session) -> None:
    """A variant's events answer to its ancestors' names, and a parent change updates them at once."""
    from app.queries.search_document import load_words

    make_system(db, "Zephra-100", ["Old Zephra"])
    make_system(db, "Zephra-100M")
    grandchild = make_system(db, "Kestrune-2")
    event = make_event(db, title="Drones", summary="", systems=[{"designation": "Kestrune-2"}], actors=[])
    assert found(db, "Zephra") == set()
    child = db.scalars(select(System).where(System.designation == "Zephra-100M")).one()
    update_system(db, child.id, SystemEdit(designation="Zephra-100M", parent="Zephra-100"), None)
    update_system(db, grandchild.id, SystemEdit(designation="Kestrune-2", parent="Zephra-100M"), None)
    db.flush()
    assert found(db, "Zephra") == found(db, "Old Zephra") == found(db, "Kestrune") == {event.id}
    assert_exact(db, [event.id])
    with db.connection().connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        words = load_words(cursor, [], [grandchild.id], families=True).systems[grandchild.id]
    assert words.split()[:3] == ["Kestrune-2", "kestrune-2", "Zephra-100M"]
    assert "Old Zephra" in words
    # Cutting the family off takes the ancestors' names out of the variant's events in the same transaction.
    update_system(db, child.id, SystemEdit(designation="Zephra-100M", parent=None), None)
    db.flush()
    assert found(db, "Old Zephra") == set() and found(db, "Zephra") == {event.id}


def test_counts_follow_renames(db: Session) -> None:
    """A rename changes documents and moves the data version: the copy's counts for q follow at once."""
    from app.queries.aggregates import facts
    from tests.sql_oracle import count_events

    make_actor(db, "Quillon Marsh")
    named = make_event(db, title="Quiet", summary="", actors=[{"name": "Quillon Marsh", "role": "speaker"}])
    make_event(db, title="Drones delivered", summary="", actors=[])
    facts.forget()
    for q in ("drones", "marsh"):
        f = EventFilter(q=q)
        assert facts.Selection(db, facts.current(db), f).total() == count_events(db, f), q
    actor = named.actors[0].actor
    update_actor(db, actor.id, ActorEdit(name="Quillon Fen", aliases=["Drone Command"]), None)
    db.flush()
    for q in ("drones", "marsh", "fen"):
        f = EventFilter(q=q)
        assert facts.Selection(db, facts.current(db), f).total() == count_events(db, f), q
    assert named.id in found(db, "drones") and named.id not in found(db, "marsh")
    facts.forget()
