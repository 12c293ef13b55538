"""The first pages over HTTP: timeline and event detail, as a logged-in reader sees them."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from app.demo import seed_demo
from tests.conftest import Client
from tests.factories import make_event


def test_healthz(client: Client) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["database"] == "up"


def test_pages_need_login(client: Client) -> None:
    r = client.get("/")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_timeline_lists_demo_events_newest_first(client: Client, db: Session) -> None:
    seed_demo(db)
    client.login("viewer")
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert "Duma defence official says nothing prevents supplying Oreshnik" in html
    # month precision shown as a month, year precision as a year, never as the 1st
    assert "Nov 2025" in html and ">2018<" in html and "1 Nov 2025" not in html
    assert html.index("Nov 2025") < html.index("Oct 2025") < html.index(">2018<")
    assert "RUS" in html and "VEN" in html


def test_event_page_shows_everything(client: Client, db: Session) -> None:
    event = make_event(db, title="Venezuela asks for Su-30 repairs", kind="request", date="2025-10")
    client.login("viewer")
    r = client.get(f"/events/{event.id}")
    assert r.status_code == 200
    for text in (
        "Venezuela asks for Su-30 repairs",
        "Oct 2025",
        "Sergei Ryabkov",
        "Kalibr",
        "TASS",
        "Nothing prevents us",
        "Russia",
        "Venezuela",
        "C3",
        "/?supplier=RUS",
    ):
        assert text in r.text, text


def test_missing_event_is_a_friendly_404(client: Client) -> None:
    client.login("viewer")
    r = client.get("/events/999999")
    assert r.status_code == 404
    assert "Traceback" not in r.text and "Back to the timeline" in r.text


@pytest.mark.parametrize(
    "path", ["/events/abc", "/events/12x/edit", "/events/-1/delete", "/actors/x/edit", "/systems/1.5/edit"]
)
def test_an_address_with_a_non_numeric_id_is_a_404_page(client: Client, path: str) -> None:
    client.login("admin")
    r = client.get(path)
    assert r.status_code == 404
    assert "Back to the timeline" in r.text and "valid integer" not in r.text


def test_autocomplete_finds_actor_by_alias_and_accentless_name(client: Client, db: Session) -> None:
    seed_demo(db)
    client.login("viewer")
    r = client.get("/suggest/actors", params={"actor": "rybakov"})
    assert 'value="Sergei Ryabkov"' in r.text
    r = client.get("/suggest/actors", params={"q": "nicolas"})
    assert 'value="Nicolás Maduro"' in r.text
    r = client.get("/suggest/actors", params={"q": "Рябков"})
    assert 'value="Sergei Ryabkov"' in r.text
    r = client.get("/suggest/countries", params={"q": "venez"})
    assert 'value="VEN"' in r.text
    r = client.get("/suggest/systems", params={"q": "ores"})
    assert 'value="Oreshnik"' in r.text


def test_a_refused_date_stays_in_its_box_to_be_fixed(client: Client, db: Session) -> None:
    seed_demo(db)
    client.login("viewer")
    r = client.get("/?from=2025-13&to=2025-11")
    assert r.status_code == 200
    assert 'id="f-from" name="from" value="2025-13"' in r.text  # not an empty box showing the placeholder
    assert 'aria-describedby="filter-errors date-help" aria-invalid="true"' in r.text
    assert 'id="f-to" name="to" value="2025-11"' in r.text
