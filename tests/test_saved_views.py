"""Saved views: create, rename, share, update, delete; privacy; counts on the facts copy; new since opened."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.models import AuditEntry, Event, SavedView, SavedViewOpen
from app.queries.watch import new_since, written_since
from app.services.saved_views import canonical_query
from tests import sql_oracle
from tests.conftest import Client, make_user
from tests.factories import from_mapping, make_actor, make_event


def _save(client: Client, name: str, query: str, path: str = "/", shared: bool = False) -> SavedView:
    data = {"name": name, "path": path, "query": query, **({"shared": "1"} if shared else {})}
    r = client.post("/views", data=data)
    assert r.status_code == 303, r.text
    return client.db.scalars(select(SavedView).where(SavedView.name == name)).one()


def _backdate(db: Session, view: SavedView, user_id: int) -> None:
    """Pretend the user opened the view long ago (audit rows carry the test transaction's start time)."""
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    db.execute(
        update(SavedViewOpen)
        .where(SavedViewOpen.view_id == view.id, SavedViewOpen.user_id == user_id)
        .values(opened_at=long_ago)
    )
    db.execute(update(SavedView).where(SavedView.id == view.id).values(updated_at=long_ago))
    db.flush()


def test_save_open_and_list_with_counts(analyst: Client, db: Session) -> None:
    make_event(db)
    make_event(db, title="China ships drones to Iran", countries=[{"code": "CHN", "role": "supplier"}])
    db.commit()
    view = _save(analyst, "Russian supply", "supplier=RUS&cursor=abc&kind=offer")
    assert view.query == "supplier=RUS&kind=offer"  # canonical, cursor dropped
    assert view.path == "/" and not view.shared and view.owner_id == analyst.user.id
    # Opening goes to the page with the filter and notes the time.
    r = analyst.get(f"/views/{view.id}")
    assert r.status_code == 303 and r.headers["location"] == "/?supplier=RUS&kind=offer"
    page = analyst.get("/views").text
    assert "Russian supply" in page
    menu = analyst.get("/views/menu").text
    count = re.search(r'class="view-count">([\d,]+)<', menu)
    assert count and int(count.group(1)) == sql_oracle.count_events(
        db, from_mapping({"supplier": "RUS", "kind": "offer"})
    )
    assert int(count.group(1)) == 1
    assert "/feeds/new?view=" in menu  # the menu links each view's feed
    # Every write is in the history.
    actions = db.scalars(
        select(AuditEntry.action).where(
            AuditEntry.entity_type == "saved_view", AuditEntry.entity_id == view.id
        )
    ).all()
    assert actions == ["create"]


def test_new_since_counts_created_and_changed_events_of_the_filter(analyst: Client, db: Session) -> None:
    make_event(db)
    db.commit()
    view = _save(analyst, "RUS", "supplier=RUS")
    _backdate(db, view, analyst.user.id)
    make_event(db, title="A second Russian offer")
    make_event(db, title="China offer", countries=[{"code": "CHN", "role": "supplier"}])  # not in the filter
    db.commit()
    menu = analyst.get("/views/menu").text
    # Both Russian events were written after the (backdated) opening: the old one too, created in this test.
    assert "2 new" in menu
    f = from_mapping({"supplier": "RUS"})
    assert new_since(db, f, datetime(2000, 1, 1, tzinfo=UTC)).count == 2
    # The SQL twin gives the same answer, for this filter and a wider one.
    for filt in (f, from_mapping({}), from_mapping({"supplier": "CHN"})):
        since = datetime(2000, 1, 1, tzinfo=UTC)
        assert new_since(db, filt, since).count == sql_oracle.new_since(db, filt, since)
    # One read of the writes from the oldest moment serves later moments too (the menu's shared read).
    writes = written_since(db, datetime(2000, 1, 1, tzinfo=UTC))
    events = db.scalars(select(Event).order_by(Event.id)).all()
    for moment in (datetime(2000, 1, 1, tzinfo=UTC), *(e.created_at for e in events)):
        for filt in (f, from_mapping({})):
            assert new_since(db, filt, moment, writes) == new_since(db, filt, moment)
            assert new_since(db, filt, moment).count == sql_oracle.new_since(db, filt, moment)
    # Opening the view starts again from zero.
    analyst.get(f"/views/{view.id}")
    assert "new</span>" not in analyst.get("/views/menu").text
    assert new_since(db, f, datetime.now(UTC) + timedelta(seconds=1)).count == 0


def test_private_views_are_private_and_shared_ones_seen_by_all(client: Client, db: Session) -> None:
    owner = client.login("analyst")
    private = _save(client, "Mine only", "kind=offer")
    shared = _save(client, "For the desk", "kind=transfer", shared=True)
    other = Client(client.http.app, db)
    other.login("viewer")
    listing = other.get("/views").text
    assert "For the desk" in listing and "Mine only" not in listing
    assert other.get(f"/views/{private.id}").status_code == 404
    assert other.get(f"/views/{shared.id}").status_code == 303
    # A viewer sees the shared view but may not change it.
    assert other.post(f"/views/{shared.id}/rename", data={"name": "Hijacked"}).status_code == 403
    assert other.post(f"/views/{shared.id}/delete").status_code == 403
    assert other.post(f"/views/{private.id}/delete").status_code == 404
    db.refresh(shared)
    assert shared.name == "For the desk"
    # An admin may change anyone's view.
    admin = Client(client.http.app, db)
    admin.login("admin")
    assert admin.post(f"/views/{shared.id}/rename", data={"name": "Desk transfers"}).status_code == 303
    db.refresh(shared)
    assert shared.name == "Desk transfers" and shared.owner_id == owner.id


def test_rename_share_update_delete(analyst: Client, db: Session) -> None:
    view = _save(analyst, "Offers", "kind=offer")
    other = _save(analyst, "Transfers", "kind=transfer")
    assert analyst.post(f"/views/{view.id}/rename", data={"name": "Open offers"}).status_code == 303
    # Duplicate names (any case) are refused with the message beside the view.
    r = analyst.post(f"/views/{other.id}/rename", data={"name": "OPEN offers"})
    assert r.status_code == 422 and "already a view named" in r.text
    r = analyst.post(f"/views/{other.id}/rename", data={"name": "  "})
    assert r.status_code == 422 and "name of 1–100" in r.text
    assert analyst.post(f"/views/{view.id}/share", data={"shared": "1"}).status_code == 303
    assert (
        analyst.post(f"/views/{view.id}/update", data={"path": "/dyads", "query": "supplier=RUS"}).status_code
        == 303
    )
    db.refresh(view)
    assert (view.name, view.shared, view.path, view.query) == ("Open offers", True, "/dyads", "supplier=RUS")
    bad = analyst.post(f"/views/{view.id}/update", data={"path": "/admin", "query": ""})
    assert bad.status_code == 422
    assert analyst.post(f"/views/{view.id}/delete").status_code == 303
    assert db.get(SavedView, view.id) is None
    actions = db.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.entity_type == "saved_view", AuditEntry.entity_id == view.id)
        .order_by(AuditEntry.id)
    ).all()
    assert actions == ["create", "update", "update", "update", "delete"]


def test_save_refusal_keeps_the_input(analyst: Client) -> None:
    _save(analyst, "Offers", "kind=offer")
    r = analyst.post("/views", data={"name": "offers", "path": "/", "query": "kind=offer", "shared": "1"})
    assert r.status_code == 422
    assert 'value="offers"' in r.text and "already a view named" in r.text
    assert 'name="shared" value="1" checked' in r.text


def test_view_naming_a_deleted_actor_opens_with_the_timeline_message(analyst: Client, db: Session) -> None:
    actor = make_actor(db, "Ivan Gone")
    db.commit()
    view = _save(analyst, "Ivan", "actor=Ivan Gone")
    assert view.query == "actor=Ivan+Gone"
    db.delete(actor)
    db.commit()
    target = analyst.get(f"/views/{view.id}").headers["location"]
    page = analyst.get(target)
    assert page.status_code == 200
    assert "no actor is called “Ivan Gone”" in page.text
    # The menu still counts it (the value left out, as the page does).
    assert analyst.get("/views/menu").status_code == 200


def test_canonical_query_keeps_names_and_drops_noise() -> None:
    assert canonical_query("?actor=Nobody&cursor=x&bogus=1&kind=offer") == "actor=Nobody&kind=offer"


def test_views_need_a_signed_in_user(client: Client) -> None:
    assert client.get("/views").status_code == 303
    r = client.post("/views", data={"name": "x"})
    assert r.status_code in (303, 403)
    user = make_user(client.db, "viewer")
    assert user.id  # a viewer may save views (personal, not event data)


def test_view_naming_a_merged_actor_follows_the_kept_entry(analyst: Client, db: Session) -> None:
    from app.models import Actor
    from app.services.reference import merge_actors

    make_event(db, actors=[{"name": "Sergey Rybakov", "role": "speaker"}])
    make_event(db, title="Second", actors=[{"name": "Sergei Ryabkov", "role": "speaker"}])
    db.commit()
    view = _save(analyst, "Rybakov", "actor=Sergey Rybakov")
    keep = db.scalars(select(Actor).where(Actor.name == "Sergei Ryabkov")).one()
    drop = db.scalars(select(Actor).where(Actor.name == "Sergey Rybakov")).one()
    merge_actors(db, keep.id, drop.id, None)
    db.commit()
    page = analyst.get(analyst.get(f"/views/{view.id}").headers["location"])
    assert page.status_code == 200 and 'id="filter-errors"' not in page.text
    # The dropped name is now an alias of the kept actor: the view shows both events.
    assert "<strong>2</strong> events" in page.text
