"""/api/v1/actors, /systems, /countries: search, paging, counts, detail and errors."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.accounts import create_token
from app.models import Actor, System
from app.services.events import delete_event
from tests.conftest import Client, make_user
from tests.factories import make_event

Headers = dict[str, str]


@pytest.fixture
def viewer(db: Session) -> Headers:
    user = make_user(db, "viewer")
    _, raw = create_token(db, user, "tests")
    db.commit()
    return {"Authorization": f"Bearer {raw}"}


def test_reference_endpoints_need_credentials(client: Client) -> None:
    for path in (
        "/api/v1/actors",
        "/api/v1/actors/1",
        "/api/v1/systems",
        "/api/v1/systems/1",
        "/api/v1/countries",
        "/api/v1/countries/RUS",
    ):
        r = client.get(path)
        assert r.status_code == 401 and r.json()["detail"], path


def test_actors_search_by_alias_with_counts(client: Client, db: Session, viewer: Headers) -> None:
    make_event(db)
    gone = make_event(db, title="Deleted one")
    make_event(db, title="Peskov speaks", actors=[{"name": "Dmitry Peskov", "role": "speaker"}])
    delete_event(db, gone.id, None)
    actor = db.scalars(select(Actor).where(Actor.name == "Sergei Ryabkov")).one()
    actor.aliases = ["Sergey Rybakov"]
    actor.match_keys = ["sergei ryabkov", "sergey rybakov"]
    db.flush()
    r = client.get("/api/v1/actors", params={"q": "RYBAKOV"}, headers=viewer)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["name"] for i in items] == ["Sergei Ryabkov"]
    assert items[0]["event_count"] == 1  # the deleted event does not count
    assert items[0]["aliases"] == ["Sergey Rybakov"] and items[0]["country"] == "RUS"
    assert items[0]["events"] == "/api/v1/events?actor=Sergei+Ryabkov"
    detail = client.get(f"/api/v1/actors/{actor.id}", headers=viewer)
    assert detail.status_code == 200 and detail.json()["name"] == "Sergei Ryabkov"
    missing = client.get("/api/v1/actors/987654", headers=viewer)
    assert missing.status_code == 404 and missing.json() == {"detail": "No actor 987654."}


def test_actors_page_with_next(client: Client, db: Session, viewer: Headers) -> None:
    make_event(
        db,
        actors=[{"name": f"Person {i:02d}", "role": "speaker"} for i in range(7)],
    )
    names: list[str] = []
    url: str | None = "/api/v1/actors?q=person&limit=3"
    while url:
        body = client.get(url, headers=viewer).json()
        names += [i["name"] for i in body["items"]]
        url = body["next"]
    assert names == [f"Person {i:02d}" for i in range(7)]


def test_systems(client: Client, db: Session, viewer: Headers) -> None:
    make_event(db, systems=[{"designation": "Oreshnik", "category": "ballistic missile", "origin": "RUS"}])
    system = db.scalars(select(System).where(System.designation == "Oreshnik")).one()
    r = client.get("/api/v1/systems?q=oresh", headers=viewer)
    assert r.status_code == 200
    assert r.json()["items"] == [
        {
            "id": system.id,
            "designation": "Oreshnik",
            "aliases": [],
            "category": "ballistic missile",
            "origin": "RUS",
            "parent": None,
            "event_count": 1,
            "events": "/api/v1/events?system=Oreshnik",
        }
    ]
    assert r.json()["next"] is None
    assert client.get(f"/api/v1/systems/{system.id}", headers=viewer).json()["event_count"] == 1
    assert client.get("/api/v1/systems/987654", headers=viewer).status_code == 404


def test_countries(client: Client, db: Session, viewer: Headers) -> None:
    make_event(db)
    r = client.get("/api/v1/countries?q=venez", headers=viewer)
    assert r.status_code == 200
    assert [(c["code"], c["name"], c["event_count"]) for c in r.json()["items"]] == [("VEN", "Venezuela", 1)]
    assert client.get("/api/v1/countries?q=RUS", headers=viewer).json()["items"][0]["code"] == "RUS"
    for ref in ("VEN", "ve", "Venezuela"):
        got = client.get(f"/api/v1/countries/{ref}", headers=viewer)
        assert got.status_code == 200 and got.json()["code"] == "VEN", ref
    assert client.get("/api/v1/countries/Atlantis", headers=viewer).status_code == 404
    everything = client.get("/api/v1/countries?limit=200", headers=viewer).json()
    assert len(everything["items"]) == 200 and everything["next"].endswith("offset=200")


def test_bad_paging_is_422(client: Client, viewer: Headers) -> None:
    for query in ("limit=0", "limit=1000", "offset=-1", "limit=x"):
        r = client.get(f"/api/v1/actors?{query}", headers=viewer)
        assert r.status_code == 422, query
        assert r.json()["detail"][0]["loc"][0] == "query"
