"""/api/v1/events: every endpoint, its permissions and each of its error answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.accounts import create_token
from app.models import AuditEntry, Event
from app.queries.events import event_select
from app.services.events import delete_event
from tests.conftest import Client, make_user
from tests.factories import event_data, from_mapping, make_event

Headers = dict[str, str]


@pytest.fixture
def token(db: Session) -> Callable[[str], Headers]:
    """Factory: Authorization headers carrying a fresh API token of a user with `role`."""

    def make(role: str = "analyst") -> Headers:
        user = make_user(db, role)
        _, raw = create_token(db, user, "tests")
        db.commit()
        return {"Authorization": f"Bearer {raw}"}

    return make


def events_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Event).where(Event.deleted_at.is_(None))) or 0)


# ---- list ------------------------------------------------------------------------------------------


def test_list_needs_credentials(client: Client) -> None:
    r = client.get("/api/v1/events")
    assert r.status_code == 401
    assert r.json() == {"detail": "Log in or send a valid API token."}
    assert r.headers["www-authenticate"] == "Bearer"
    bad = client.get("/api/v1/events", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"supplier": "RUS"},
        {"kind": ["offer", "request"]},
        {"from": "2025-10", "to": "2025-10"},
        {"q": "Kalibr"},
    ],
)
def test_list_equals_the_timeline_and_pages_by_cursor(
    client: Client, db: Session, token: Callable[[str], Headers], filters: dict[str, Any]
) -> None:
    for i, (kind, day) in enumerate(
        [("offer", "2025-10-14"), ("request", "2025-10"), ("statement", "2025"), ("offer", "2024-01-02")] * 2
    ):
        make_event(db, title=f"Event {i} Kalibr" if i % 2 else f"Event {i}", kind=kind, date=day)
    headers = token("viewer")
    expected = list(db.scalars(event_select(from_mapping(filters)).with_only_columns(Event.id)))
    seen: list[int] = []
    url: str | None = "/api/v1/events"
    params: dict[str, Any] | None = {**filters, "limit": 3}
    pages = 0
    while url:
        r = client.get(url, params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [item["id"] for item in body["items"]]
        url, params = body["next"], None
        pages += 1
        assert pages < 10
    assert seen == expected
    assert pages == max(1, -(-len(expected) // 3))  # no empty trailing page


def test_list_item_shape(client: Client, db: Session, token: Callable[[str], Headers]) -> None:
    event = make_event(db, date="2025-10", stage_override=4)
    item = client.get("/api/v1/events", headers=token("viewer")).json()["items"][0]
    assert item["id"] == event.id
    assert item["date"] == "2025-10" and item["date_end"] is None
    assert (item["stage"], item["stage_label"], item["stage_override"]) == (4, "in transit", 4)
    assert item["countries"] == [
        {"code": "RUS", "name": "Russia", "role": "supplier"},
        {"code": "VEN", "name": "Venezuela", "role": "recipient"},
    ]
    assert item["actors"][0]["name"] == "Sergei Ryabkov" and item["actors"][0]["role"] == "speaker"
    assert item["systems"][0] == {
        "id": item["systems"][0]["id"],
        "designation": "Kalibr",
        "quantity": 4,
        "quantity_note": None,
    }
    assert item["sources"][0]["reliability"] == "C" and item["sources"][0]["credibility"] == 3
    assert item["url"] == f"/api/v1/events/{event.id}" and item["page"] == f"/events/{event.id}"
    assert item["version"] == 1


def test_bad_filters_are_422_listing_each_parameter(client: Client, token: Callable[[str], Headers]) -> None:
    r = client.get(
        "/api/v1/events?country=Atlantis&stage_min=9&from=yesterday&kind=wish&counrty=RUS",
        headers=token("viewer"),
    )
    assert r.status_code == 422
    params = {tuple(e["loc"])[1]: e["msg"] for e in r.json()["detail"]}
    assert set(params) == {"country", "stage_min", "from", "kind", "counrty"}
    assert "Atlantis" in params["country"] and "unknown parameter" in params["counrty"]


def test_bad_cursor_and_limit_are_422(client: Client, token: Callable[[str], Headers]) -> None:
    headers = token("viewer")
    r = client.get("/api/v1/events?cursor=!!garbage!!", headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "cursor"]
    r = client.get("/api/v1/events?limit=0", headers=headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "limit"]
    assert client.get("/api/v1/events?limit=500", headers=headers).status_code == 422


# ---- detail ----------------------------------------------------------------------------------------


def test_detail_and_404(client: Client, db: Session, token: Callable[[str], Headers]) -> None:
    event = make_event(db)
    gone = make_event(db, title="Gone")
    delete_event(db, gone.id, None)
    headers = token("viewer")
    r = client.get(f"/api/v1/events/{event.id}", headers=headers)
    assert r.status_code == 200 and r.json()["title"] == event.title
    for missing in (gone.id, 987654321):
        r = client.get(f"/api/v1/events/{missing}", headers=headers)
        assert r.status_code == 404 and "No event" in r.json()["detail"]
    assert client.get("/api/v1/events/abc", headers=headers).status_code == 422


# ---- create ----------------------------------------------------------------------------------------


def test_create(client: Client, db: Session, token: Callable[[str], Headers]) -> None:
    before = events_count(db)
    r = client.post("/api/v1/events", json=event_data(title="Made by the API"), headers=token("analyst"))
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/events/{body['id']}"
    assert body["title"] == "Made by the API" and body["version"] == 1
    assert events_count(db) == before + 1
    audit = db.scalars(select(AuditEntry).where(AuditEntry.entity_id == body["id"])).one()
    assert audit.action == "create" and audit.username.startswith("analyst-")


def test_create_is_forbidden_to_viewers_and_anonymous(
    client: Client, db: Session, token: Callable[[str], Headers]
) -> None:
    before = events_count(db)
    r = client.post("/api/v1/events", json=event_data(), headers=token("viewer"))
    assert r.status_code == 403 and "analyst" in r.json()["detail"]
    assert client.post("/api/v1/events", json=event_data()).status_code in (401, 403)
    assert events_count(db) == before


def test_client_token_makes_retries_safe(
    client: Client, db: Session, token: Callable[[str], Headers]
) -> None:
    headers = token("analyst")
    payload = event_data(client_token=str(uuid.uuid4()))
    first = client.post("/api/v1/events", json=payload, headers=headers)
    before = events_count(db)
    again = client.post("/api/v1/events", json=payload, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert events_count(db) == before


def test_a_retried_create_of_an_event_since_deleted_is_a_409_saying_how_to_restore_it(
    client: Client, db: Session, token: Callable[[str], Headers]
) -> None:
    headers = token("analyst")
    payload = event_data(client_token=str(uuid.uuid4()))
    first = client.post("/api/v1/events", json=payload, headers=headers)
    event_id = first.json()["id"]
    assert client.delete(f"/api/v1/events/{event_id}", headers=headers).status_code == 204
    before = events_count(db)
    again = client.post("/api/v1/events", json=payload, headers=headers)
    assert again.status_code == 409, again.text
    detail = again.json()["detail"]
    assert f"event {event_id}" in detail and "deleted" in detail
    assert "/admin/deleted" in detail and f"/admin/events/{event_id}/restore" in detail
    assert events_count(db) == before


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"kind": "wish"}, ["body", "kind"]),
        ({"date": "2999-01-01"}, ["body", "date"]),
        ({"date": "31/12/2024"}, ["body", "date"]),
        ({"title": ""}, ["body", "title"]),
        ({"countries": [{"code": "XXX", "role": "supplier"}]}, ["body", "countries", 0, "code"]),
        ({"sources": [{"publisher": "TASS", "url": "javascript:alert(1)"}]}, ["body", "sources", 0, "url"]),
        ({"sources": [{"publisher": "TASS", "reliability": "Z"}]}, ["body", "sources", 0, "reliability"]),
        ({"unexpected": 1}, ["body", "unexpected"]),
        ({"date_end": "2020"}, ["body"]),
    ],
)
def test_create_validates_like_the_form(
    client: Client, db: Session, token: Callable[[str], Headers], change: dict[str, Any], loc: list[Any]
) -> None:
    before = events_count(db)
    r = client.post("/api/v1/events", json=event_data(**change), headers=token("analyst"))
    assert r.status_code == 422
    assert any(e["loc"] == loc for e in r.json()["detail"]), r.json()
    assert events_count(db) == before


def test_browser_session_needs_the_csrf_header(client: Client, db: Session) -> None:
    client.login("analyst")
    csrf = client.http.headers.pop("X-CSRF-Token")
    refused = client.post("/api/v1/events", json=event_data())
    assert refused.status_code == 403
    ok = client.post("/api/v1/events", json=event_data(), headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201


def test_malformed_json_is_422(client: Client, token: Callable[[str], Headers]) -> None:
    headers = {**token("analyst"), "content-type": "application/json"}
    r = client.post("/api/v1/events", content=b"{not json", headers=headers)
    assert r.status_code == 422 and isinstance(r.json()["detail"], list)


# ---- update ----------------------------------------------------------------------------------------


def test_put_replaces_and_bumps_the_version(
    client: Client, db: Session, token: Callable[[str], Headers]
) -> None:
    event = make_event(db)
    headers = token("analyst")
    r = client.put(
        f"/api/v1/events/{event.id}?reason=typo",
        json={**event_data(title="Corrected title", kind="request"), "version": 1},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["kind"], r.json()["version"]) == ("Corrected title", "request", 2)
    audit = db.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == event.id, AuditEntry.action == "update")
    ).one()
    assert audit.reason == "typo" and "title" in audit.changes


def test_put_with_a_stale_version_is_409_with_the_current(
    client: Client, db: Session, token: Callable[[str], Headers]
) -> None:
    event = make_event(db)
    headers = token("analyst")
    assert (
        client.put(
            f"/api/v1/events/{event.id}", json={**event_data(title="First"), "version": 1}, headers=headers
        ).status_code
        == 200
    )
    r = client.put(
        f"/api/v1/events/{event.id}", json={**event_data(title="Second"), "version": 1}, headers=headers
    )
    assert r.status_code == 409
    body = r.json()
    assert body["current_version"] == 2 and body["current"]["title"] == "First"
    assert "version 2" in body["detail"]


def test_put_errors(client: Client, db: Session, token: Callable[[str], Headers]) -> None:
    event = make_event(db)
    analyst = token("analyst")
    assert (
        client.put("/api/v1/events/987654", json={**event_data(), "version": 1}, headers=analyst).status_code
        == 404
    )
    missing_version = client.put(f"/api/v1/events/{event.id}", json=event_data(), headers=analyst)
    assert missing_version.status_code == 422
    assert ["body", "version"] in [e["loc"] for e in missing_version.json()["detail"]]
    bad = client.put(
        f"/api/v1/events/{event.id}", json={**event_data(kind="wish"), "version": 1}, headers=analyst
    )
    assert bad.status_code == 422
    viewer = client.put(
        f"/api/v1/events/{event.id}", json={**event_data(), "version": 1}, headers=token("viewer")
    )
    assert viewer.status_code == 403


def test_patch_changes_only_what_is_sent(
    client: Client, db: Session, token: Callable[[str], Headers]
) -> None:
    event = make_event(db, date="2025-10", tags=["keep"])
    headers = token("analyst")
    r = client.patch(f"/api/v1/events/{event.id}", json={"title": "Patched", "version": 1}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Patched" and body["version"] == 2
    assert body["date"] == "2025-10" and body["tags"] == ["keep"] and len(body["sources"]) == 1
    assert [a["name"] for a in body["actors"]] == ["Sergei Ryabkov"]
    stale = client.patch(
        f"/api/v1/events/{event.id}", json={"status": "confirmed", "version": 1}, headers=headers
    )
    assert stale.status_code == 409 and stale.json()["current_version"] == 2


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"kind": "wish"}, ["body", "kind"]),
        ({"title": None}, ["body", "title"]),
        ({"date": "soon"}, ["body", "date"]),
        ({"nonsense": True}, ["body", "nonsense"]),
        ({}, ["body", "version"]),
    ],
)
def test_patch_validation(
    client: Client, db: Session, token: Callable[[str], Headers], change: dict[str, Any], loc: list[Any]
) -> None:
    event = make_event(db)
    body = {**change} if loc == ["body", "version"] else {**change, "version": 1}
    r = client.patch(f"/api/v1/events/{event.id}", json=body, headers=token("analyst"))
    assert r.status_code == 422
    assert loc in [e["loc"] for e in r.json()["detail"]], r.json()
    db.refresh(event)
    assert event.version == 1


def test_patch_missing_and_forbidden(client: Client, db: Session, token: Callable[[str], Headers]) -> None:
    event = make_event(db)
    assert (
        client.patch("/api/v1/events/987654", json={"version": 1}, headers=token("analyst")).status_code
        == 404
    )
    assert (
        client.patch(f"/api/v1/events/{event.id}", json={"version": 1}, headers=token("viewer")).status_code
        == 403
    )


# ---- delete ----------------------------------------------------------------------------------------


def test_delete(client: Client, db: Session, token: Callable[[str], Headers]) -> None:
    event = make_event(db)
    headers = token("analyst")
    assert client.delete(f"/api/v1/events/{event.id}", headers=token("viewer")).status_code == 403
    stale = client.delete(f"/api/v1/events/{event.id}?version=7", headers=headers)
    assert stale.status_code == 409 and stale.json()["current_version"] == 1
    r = client.delete(f"/api/v1/events/{event.id}?version=1&reason=duplicate", headers=headers)
    assert r.status_code == 204 and r.content == b""
    assert client.get(f"/api/v1/events/{event.id}", headers=headers).status_code == 404
    assert event.id not in [i["id"] for i in client.get("/api/v1/events", headers=headers).json()["items"]]
    assert client.delete(f"/api/v1/events/{event.id}", headers=headers).status_code == 404
    audit = db.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == event.id, AuditEntry.action == "delete")
    ).one()
    assert audit.reason == "duplicate"


def test_revoked_token_is_refused(client: Client, db: Session) -> None:
    from app.auth.accounts import revoke_token

    user = make_user(db, "analyst")
    record, raw = create_token(db, user, "soon revoked")
    db.commit()
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/events", headers=headers).status_code == 200
    assert revoke_token(db, user, record.id)
    db.commit()
    assert client.get("/api/v1/events", headers=headers).status_code == 401
