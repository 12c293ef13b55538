"""Soft delete: the event leaves every list, count and export; an admin lists it and restores it whole."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.filters import EventFilter
from app.queries.events import count_events, timeline_page
from app.services.events import delete_event, load_event
from tests.factories import make_event


def test_delete_asks_for_confirmation_first(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    page = analyst.get(f"/events/{event.id}/delete")
    assert page.status_code == 200
    assert "Delete this event?" in page.text and event.title in page.text
    assert 'name="reason"' in page.text and 'name="csrf_token"' in page.text
    assert load_event(db, event.id).deleted_at is None  # GET changes nothing


def test_delete_leaves_counts_timeline_and_export_restore_brings_all_back(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    keep = make_event(
        db,
        title="North Korea sends artillery shells to Russia",
        kind="transfer",
        countries=[{"code": "PRK", "role": "supplier"}, {"code": "RUS", "role": "recipient"}],
    )
    gone = make_event(db)
    everything, venezuela = EventFilter(), EventFilter(recipient=("VEN",))
    assert count_events(db, everything) == 2 and count_events(db, venezuela) == 1

    client.login("analyst")
    response = client.post(f"/events/{gone.id}/delete", data={"reason": "entered twice"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/events/{gone.id}/delete?done=1"
    assert "was deleted" in client.get(response.headers["location"]).text

    db.expire_all()
    assert count_events(db, everything) == 1 and count_events(db, venezuela) == 0
    assert [e.id for e in timeline_page(db, everything).events] == [keep.id]
    timeline = client.get("/").text
    assert gone.title not in timeline and keep.title in timeline
    export = client.get("/export.csv")
    assert export.status_code == 200
    assert keep.title in export.text and gone.title not in export.text
    # A non-admin gets 404 for the deleted event and cannot edit it.
    assert client.get(f"/events/{gone.id}").status_code == 404
    assert client.get(f"/events/{gone.id}/edit").status_code == 404
    assert client.post(f"/admin/events/{gone.id}/restore").status_code == 403

    client.login("admin")
    listing = client.get("/admin/deleted").text
    assert gone.title in listing and f'action="/admin/events/{gone.id}/restore"' in listing
    assert keep.title not in listing
    assert "“entered twice”" in listing  # who deleted it and why
    detail = client.get(f"/events/{gone.id}").text
    assert "Deleted" in detail and f'action="/admin/events/{gone.id}/restore"' in detail
    assert f'href="/events/{gone.id}/edit"' not in detail

    restored = client.post(f"/admin/events/{gone.id}/restore")
    assert restored.status_code == 303 and restored.headers["location"] == f"/events/{gone.id}?restored=1"
    db.expire_all()
    assert count_events(db, everything) == 2 and count_events(db, venezuela) == 1
    event = load_event(db, gone.id)
    assert [c.country_code for c in event.countries] == ["RUS", "VEN"]
    assert [a.actor.name for a in event.actors] == ["Sergei Ryabkov"]
    assert [s.system.designation for s in event.systems] == ["Kalibr"]
    assert [s.publisher for s in event.sources] == ["TASS"]
    assert gone.title in client.get("/export.csv").text
    assert "Restored, with all its sources and links." in client.get(f"/events/{gone.id}?restored=1").text
    assert "No deleted events" in client.get("/admin/deleted").text


def test_admin_pages_need_admin(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    client.login("analyst")
    assert client.get("/admin").status_code == 403
    assert client.get("/admin/deleted").status_code == 403
    client.login("admin")
    home = client.get("/admin")
    assert (
        home.status_code == 200
        and 'href="/admin/deleted"' in home.text
        and 'href="/admin/merge/actors"' in home.text
    )


def test_restore_of_unknown_event_is_404(client) -> None:  # type: ignore[no-untyped-def]
    client.login("admin")
    assert client.post("/admin/events/999999/restore").status_code == 404


def test_reposting_the_form_of_an_event_since_deleted_says_so(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    from tests.test_forms import FULL_FORM, created_id, post_new

    token = "6f1d3c2a-8b7e-4f10-9c55-0e2d4b6a7f81"
    event_id = created_id(post_new(analyst, FULL_FORM, client_token=token, confirm_duplicate="1"))
    delete_event(db, event_id, None)
    db.commit()
    again = post_new(analyst, FULL_FORM, client_token=token, confirm_duplicate="1")
    assert again.status_code == 409, again.text[:300]
    assert f"event {event_id}, which has since been deleted" in again.text and "/admin/deleted" in again.text
