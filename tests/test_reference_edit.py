"""Actors and systems: edit names, aliases and country (match keys follow); merge two entries into one."""

from __future__ import annotations

import html

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.filters import EventFilter
from app.models import Actor, AuditEntry, EventActor, EventSystem, System
from app.queries.events import count_events
from app.services.events import find_actor, find_system, load_event
from app.web import reference_edit
from tests.factories import make_event


def test_edit_actor_adds_alias_and_fixes_country(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    actor = event.actors[0].actor
    page = analyst.get(f"/actors/{actor.id}/edit")
    assert page.status_code == 200 and 'value="Sergei Ryabkov"' in page.text
    response = analyst.post(
        f"/actors/{actor.id}/edit",
        data={
            "name": "Sergei Ryabkov",
            "aliases": "Sergey Rybakov\nС. Рябков",
            "type": "person",
            "country": "Russia",
            "title": "Deputy Foreign Minister",
        },
    )
    assert response.status_code == 303 and response.headers["location"] == f"/actors/{actor.id}/edit?saved=1"
    db.expire_all()
    actor = db.get(Actor, actor.id)
    assert actor is not None
    assert actor.aliases == ["Sergey Rybakov", "С. Рябков"]
    assert actor.match_keys == ["sergei ryabkov", "sergey rybakov", "с. рябков"]
    assert (actor.country_code, actor.title) == ("RUS", "Deputy Foreign Minister")
    assert find_actor(db, "SERGEY RYBAKOV") is actor
    assert count_events(db, EventFilter(actor=("Sergey Rybakov",))) == 1
    entry = db.scalars(
        select(AuditEntry).where(AuditEntry.entity_type == "actor", AuditEntry.entity_id == actor.id)
    ).one()
    assert entry.action == "update" and entry.username == analyst.user.username
    assert entry.changes["aliases"] == {"before": [], "after": ["Sergey Rybakov", "С. Рябков"]}
    assert entry.changes["title"] == {"before": None, "after": "Deputy Foreign Minister"}
    assert "Sergey Rybakov" in analyst.get(f"/actors/{actor.id}/edit?saved=1").text


def test_edit_actor_errors_keep_values(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    actor = event.actors[0].actor
    other = Actor(name="Nicolás Maduro", aliases=[], match_keys=["nicolas maduro"], type="person")
    db.add(other)
    db.commit()  # a refused save rolls the request's transaction back; keep the setup
    bad_country = analyst.post(
        f"/actors/{actor.id}/edit", data={"name": "Sergei Ryabkov", "country": "Atlantis", "aliases": "S. R."}
    )
    assert bad_country.status_code == 422
    assert "Unknown country “Atlantis”" in bad_country.text and 'value="Atlantis"' in bad_country.text
    assert 'aria-invalid="true" aria-describedby="country-error"' in bad_country.text
    assert "S. R.</textarea>" in bad_country.text
    empty = analyst.post(f"/actors/{actor.id}/edit", data={"name": " ", "country": ""})
    assert empty.status_code == 422 and "Enter the actor&#39;s name." in empty.text
    stolen = analyst.post(
        f"/actors/{actor.id}/edit", data={"name": "Sergei Ryabkov", "aliases": "Nicolas Maduro"}
    )
    assert stolen.status_code == 422 and "merge the two actors" in stolen.text
    assert "“Nicolas Maduro” already names" in html.unescape(stolen.text)  # as typed, not folded
    db.expire_all()
    assert db.get(Actor, actor.id).aliases == []  # type: ignore[union-attr]


def test_edit_system(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    system = event.systems[0].system
    db.commit()
    response = analyst.post(
        f"/systems/{system.id}/edit",
        data={
            "designation": "3M-14 Kalibr",
            "aliases": "Kalibr\nSS-N-30A",
            "category": "cruise missile",
            "origin": "RUS",
        },
    )
    assert response.status_code == 303
    db.expire_all()
    system = db.get(System, system.id)
    assert system is not None and system.designation == "3M-14 Kalibr"
    assert system.match_keys == ["3m-14 kalibr", "kalibr", "ss-n-30a"]
    assert find_system(db, "ss-n-30a") is system
    assert count_events(db, EventFilter(system=("Kalibr",))) == 1
    assert (
        analyst.post(f"/systems/{system.id}/edit", data={"designation": "", "origin": "ZZZ"}).status_code
        == 422
    )


def test_analyst_cannot_merge(analyst) -> None:  # type: ignore[no-untyped-def]
    assert analyst.get("/admin/merge/actors").status_code == 403
    assert analyst.post("/systems/merge", data={"keep": "a", "drop": "b"}).status_code == 403


def test_merge_actors_moves_links_without_duplicates_and_records_history(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    client.login("admin")
    first = make_event(db)  # Sergei Ryabkov, speaker
    keep = first.actors[0].actor
    second = make_event(
        db,
        title="Ryabkov repeats offer",
        date="2024-05",
        actors=[{"name": "Sergey Rybakov", "role": "speaker", "country": "RUS"}],
    )
    # An event that names both spellings in the same role: after the merge it must hold one link, not two.
    both = make_event(
        db,
        title="Both spellings",
        date="2023",
        actors=[
            {"name": "Sergei Ryabkov", "role": "speaker"},
            {"name": "Sergey Rybakov", "role": "speaker"},
            {"name": "Sergey Rybakov", "role": "negotiator"},
        ],
    )
    drop = second.actors[0].actor
    assert drop.id != keep.id
    db.commit()

    preview = client.post("/actors/merge", data={"keep": "Sergei Ryabkov", "drop": "Sergey Rybakov"})
    assert preview.status_code == 200 and "Check before merging" in preview.text
    assert "2 events will move over" in preview.text
    assert db.get(Actor, drop.id) is not None  # nothing merged yet

    done = client.post(
        "/actors/merge", data={"keep": "Sergei Ryabkov", "drop": "Sergey Rybakov", "confirm": "1"}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/actors/{keep.id}/edit?merged=1"
    db.expire_all()
    assert db.get(Actor, drop.id) is None
    keep = db.get(Actor, keep.id)
    assert keep is not None and keep.aliases == ["Sergey Rybakov"]
    assert "sergey rybakov" in keep.match_keys
    links = db.execute(
        select(EventActor.event_id, EventActor.role)
        .where(EventActor.actor_id == keep.id)
        .order_by(EventActor.event_id, EventActor.role)
    ).all()
    assert links == sorted(
        [(first.id, "speaker"), (second.id, "speaker"), (both.id, "negotiator"), (both.id, "speaker")]
    )
    assert count_events(db, EventFilter(actor=("Sergey Rybakov",))) == 3
    # Each moved event records the merge in its own history, and its version moves on.
    moved = db.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity_type == "event", AuditEntry.action == "merge")
        .order_by(AuditEntry.entity_id)
    ).all()
    assert [m.entity_id for m in moved] == sorted([second.id, both.id])
    second_change = next(m for m in moved if m.entity_id == second.id)
    assert second_change.changes["actors"] == {
        "before": ["speaker:Sergey Rybakov"],
        "after": ["speaker:Sergei Ryabkov"],
    }
    assert second_change.reason == "merged actor “Sergey Rybakov” into “Sergei Ryabkov”"
    assert load_event(db, second.id).version == 2
    page = client.get(f"/events/{second.id}").text.split('id="history"')[1]
    assert "Merged reference data" in page and "speaker:Sergey Rybakov" in page
    actor_rows = db.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "actor")).all()
    assert sorted(actor_rows) == ["merge", "merge"]


def test_a_designation_breaking_the_list_rule_says_why(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    system = make_event(db).systems[0].system
    db.commit()
    page = analyst.post(f"/systems/{system.id}/edit", data={"designation": "Kalibr ×3"})
    assert page.status_code == 422
    text = html.unescape(page.text)
    assert "cannot contain" in text and "Enter the system's designation" not in text  # one was entered
    assert 'value="Kalibr ×3"' in text  # the input is kept
    empty = html.unescape(analyst.post(f"/systems/{system.id}/edit", data={"designation": ""}).text)
    assert "Enter the system's designation." in empty


def test_merge_systems_keeps_quantities(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    client.login("admin")
    event = make_event(
        db,
        systems=[{"designation": "Su-30MK2"}, {"designation": "Su-30 MK2", "quantity": 12}],
    )
    keep, drop = (link.system for link in event.systems)
    other = make_event(
        db, title="Other", date="2022", systems=[{"designation": "Su-30 MK2", "quantity_note": "a squadron"}]
    )
    response = client.post("/systems/merge", data={"keep": "Su-30MK2", "drop": "Su-30 MK2", "confirm": "1"})
    assert response.status_code == 303
    db.expire_all()
    rows = db.execute(
        select(EventSystem.event_id, EventSystem.quantity, EventSystem.quantity_note)
        .where(EventSystem.system_id == keep.id)
        .order_by(EventSystem.event_id)
    ).all()
    assert rows == [(event.id, 12, None), (other.id, None, "a squadron")]
    assert db.scalar(select(func.count()).select_from(System).where(System.id == drop.id)) == 0
    assert db.get(System, keep.id).aliases == ["Su-30 MK2"]  # type: ignore[union-attr]


def test_merge_errors(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    client.login("admin")
    make_event(db)
    unknown = client.post("/actors/merge", data={"keep": "Sergei Ryabkov", "drop": "Nobody Atall"})
    assert unknown.status_code == 422 and "No actor is called “Nobody Atall”" in unknown.text
    assert 'value="Nobody Atall"' in unknown.text
    same = client.post("/actors/merge", data={"keep": "Sergei Ryabkov", "drop": "sergei ryabkov"})
    assert same.status_code == 422 and "same actor" in same.text


def test_a_merge_whose_entry_went_meanwhile_says_so(client, db: Session, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    client.login("admin")
    make_event(db)
    make_event(db, actors=[{"name": "Sergey Rybakov", "role": "speaker"}])

    def taken_away(session: Session, kind: object, keep_id: int, drop_id: int, who: object) -> None:
        raise LookupError(
            drop_id
        )  # what merge_actors raises when another merge removed one (test_reference_locks)

    monkeypatch.setattr(reference_edit, "merge_entries", taken_away)
    form = {"keep": "Sergei Ryabkov", "drop": "Sergey Rybakov", "confirm": "1"}
    r = client.post("/actors/merge", data=form)
    assert r.status_code == 409 and "was merged or deleted meanwhile" in r.text
    assert 'value="Sergey Rybakov"' in r.text  # the input is kept


def test_merge_pick_page_prefills_from_the_edit_page(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    client.login("admin")
    event = make_event(db)
    actor = event.actors[0].actor
    edit = client.get(f"/actors/{actor.id}/edit").text
    assert 'href="/admin/merge/actors?keep=Sergei%20Ryabkov"' in edit
    page = client.get("/admin/merge/actors?keep=Sergei%20Ryabkov")
    assert page.status_code == 200
    assert 'id="keep" name="keep" value="Sergei Ryabkov"' in page.text
    assert 'action="/actors/merge"' in page.text and 'name="csrf_token"' in page.text
    assert client.get("/admin/merge/systems").status_code == 200
