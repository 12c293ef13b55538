"""Actors, systems and countries pages: counts of visible events, search by alias, links to the timeline."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.queries.aggregates.lists import actor_list, country_list, system_list
from app.services.events import delete_event
from tests.conftest import Client
from tests.corpus import make_corpus
from tests.factories import make_event


def test_counts_ignore_deleted_events(db: Session) -> None:
    corpus = make_corpus(db)
    make_event(db, title="Second Ryabkov event", actors=[{"name": "Сергей Рябков", "role": "speaker"}])
    actors = {a.name: a.events for a in actor_list(db)}
    assert actors["Sergei Ryabkov"] == 2 and actors["Dmitry Peskov"] == 1
    assert next(iter(actor_list(db))).name == "Sergei Ryabkov"  # busiest first
    delete_event(db, corpus["alpha"].id, None)
    db.flush()
    assert {a.name: a.events for a in actor_list(db)}["Sergei Ryabkov"] == 1
    systems = {s.designation: s.events for s in system_list(db)}
    assert systems["Kalibr"] == 1  # the second event's Kalibr; alpha is deleted
    countries = {c.code: c for c in country_list(db)}
    assert countries["VEN"].recipient == 2 and countries["VEN"].events == 2
    assert "USA" not in countries  # only the deleted alpha named it


def test_search_by_alias_accent_and_cyrillic(db: Session) -> None:
    make_corpus(db)
    assert [a.name for a in actor_list(db, "рябков")] == ["Sergei Ryabkov"]
    assert [a.name for a in actor_list(db, "nicolas")] == ["Nicolás Maduro"]
    assert [a.name for a in actor_list(db, "Rybakov")] == ["Sergei Ryabkov"]
    assert [s.designation for s in system_list(db, "igla")] == ["Igla-S"]
    assert [c.code for c in country_list(db, "venez")] == ["VEN"]
    assert [c.code for c in country_list(db, "irn")] == ["IRN"]


def test_list_pages_link_names_to_the_filtered_timeline(client: Client, db: Session) -> None:
    make_corpus(db)
    client.login("viewer")
    actors = client.get("/actors").text
    assert 'href="/?actor=Nicol%C3%A1s%20Maduro"' in actors and "Сергей Рябков" in actors
    assert "/edit" not in actors  # readers get no edit links
    systems = client.get("/systems").text
    assert 'href="/?system=Igla-S"' in systems and "MANPADS" in systems
    countries = client.get("/countries").text
    assert 'href="/?country=VEN"' in countries and 'href="/?recipient=VEN"' in countries
    assert 'href="/dyads?supplier=RUS"' in countries


def test_analysts_see_edit_links(client: Client, db: Session) -> None:
    make_corpus(db)
    client.login("analyst")
    actors = client.get("/actors").text
    systems = client.get("/systems").text
    assert actors.count("/edit") == 3 and 'href="/actors/' in actors
    assert systems.count("/edit") == 3 and 'href="/systems/' in systems


def test_search_partial_and_empty_states(client: Client, db: Session) -> None:
    client.login("viewer")
    assert "No actors yet" in client.get("/actors").text
    assert "No countries yet" in client.get("/countries").text
    make_corpus(db)
    part = client.get("/actors?q=peskov", headers={"HX-Request": "true"})
    assert part.text.lstrip().startswith('<div id="list-table">') and "Dmitry Peskov" in part.text
    assert "Sergei Ryabkov" not in part.text
    none = client.get("/systems?q=zircon").text
    assert "No system matches “zircon”" in none
