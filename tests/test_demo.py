"""The demo fixture loads the report's events, and loading twice loads once."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.demo import load_fixture, seed_demo
from app.models import Actor, Event, Source
from app.services.events import find_actor


def test_seed_demo_is_idempotent(db: Session) -> None:
    expected = len(load_fixture()["events"])
    assert seed_demo(db) == expected
    assert seed_demo(db) == 0
    assert db.scalar(select(func.count(Event.id))) == expected
    assert db.scalar(select(func.count(Actor.id))) == len(load_fixture()["actors"])


def test_demo_keeps_precision_and_aliases(db: Session) -> None:
    seed_demo(db)
    oreshnik = db.scalars(select(Event).where(Event.title.like("%Oreshnik%"))).one()
    assert (oreshnik.date_precision, oreshnik.date_start.isoformat()) == ("month", "2025-11-01")
    sukhoi = db.scalars(select(Event).where(Event.kind == "assessment")).one()
    assert sukhoi.date_precision == "year"
    ryabkov = find_actor(db, "Sergey Rybakov")
    assert ryabkov is not None and ryabkov.name == "Sergei Ryabkov"
    request = db.scalars(select(Event).where(Event.kind == "request")).one()
    suppliers = sorted(c.country_code for c in request.countries if c.role == "supplier")
    assert suppliers == ["CHN", "IRN", "RUS"]
    assert db.scalar(select(func.count(Source.id)).where(Source.reliability == "B")) == 3
