"""History: one audit row per create, edit, delete, restore and merge, shown on the event page."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEntry
from app.services.events import event_input
from app.web.forms import form_from_input
from tests.factories import make_event


def rows(db: Session, event_id: int) -> list[AuditEntry]:
    db.expire_all()
    return list(
        db.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity_type == "event", AuditEntry.entity_id == event_id)
            .order_by(AuditEntry.id)
        )
    )


def edit_data(db: Session, event_id: int, **changes: str) -> dict[str, str]:
    from app.services.events import load_event

    form = form_from_input(event_input(load_event(db, event_id, include_deleted=True)), 0)
    data = dict(form.pairs())
    data.update(changes)
    return data


def test_create_edit_delete_restore_each_write_one_row(client, db: Session) -> None:  # type: ignore[no-untyped-def]
    user = client.login("admin")
    created = client.post(
        "/events/new",
        data={
            "client_token": "0b4a1f8e-8d7b-4b8e-9a53-6f7b1b6b5a01",
            "title": "Belarus hosts Oreshnik launchers",
            "kind": "deployment",
            "date_year": "2024",
            "date_month": "12",
            "sources-0-publisher": "BelTA",
            "sources-0-reliability": "C",
            "sources-0-credibility": "3",
        },
    )
    event_id = int(re.search(r"/events/(\d+)", created.headers["location"])[1])  # type: ignore[index]
    history = rows(db, event_id)
    assert [h.action for h in history] == ["create"]
    assert history[0].username == user.username
    assert history[0].changes["title"] == {"before": None, "after": "Belarus hosts Oreshnik launchers"}
    assert history[0].changes["date"] == {"before": None, "after": "2024-12"}

    data = edit_data(
        db,
        event_id,
        version="1",
        status="confirmed",
        reason="imagery",
        confirm_single_origin="1",
        **{"sources-0-credibility": "2"},
    )
    assert client.post(f"/events/{event_id}/edit", data=data).status_code == 303
    history = rows(db, event_id)
    assert [h.action for h in history] == ["create", "update"]
    change = history[-1]
    assert change.reason == "imagery"
    assert set(change.changes) == {"status", "sources"}
    assert change.changes["status"] == {"before": "reported", "after": "confirmed"}
    assert change.changes["sources"]["before"][0]["grade"] == "C3"
    assert change.changes["sources"]["after"][0]["grade"] == "C2"

    # Saving without a change writes no row and keeps the version.
    data = edit_data(db, event_id, version="2")
    assert client.post(f"/events/{event_id}/edit", data=data).status_code == 303
    assert len(rows(db, event_id)) == 2

    assert client.post(f"/events/{event_id}/delete", data={"reason": "duplicate"}).status_code == 303
    assert client.post(f"/admin/events/{event_id}/restore").status_code == 303
    history = rows(db, event_id)
    assert [h.action for h in history] == ["create", "update", "delete", "restore"]
    assert history[2].reason == "duplicate"
    assert history[2].changes == {"deleted": {"before": False, "after": True}}

    page = client.get(f"/events/{event_id}").text
    section = page.split('id="history"')[1]
    for text in (
        "Created",
        "Edited",
        "Deleted",
        "Restored",
        "Reason: “imagery”",
        "Reason: “duplicate”",
        user.username,
    ):
        assert text in section, text
    assert re.search(r"\d{2} \w{3} \d{4} \d{2}:\d{2} UTC", section)
    assert '<td class="before">reported</td><td class="after">confirmed</td>' in section
    assert section.index("Restored") < section.index("Created")  # newest first


def test_edit_form_has_optional_reason(analyst, db: Session) -> None:  # type: ignore[no-untyped-def]
    event = make_event(db)
    html = analyst.get(f"/events/{event.id}/edit").text
    assert 'name="reason"' in html and "Reason for this change" in html
