"""A small, hand-checked corpus of events for filter, facet, chart and dyad tests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.domain.textkeys import match_keys
from app.models import Actor, Event
from app.services.events import find_actor
from tests.factories import make_event


def _actor(db: Session, name: str, aliases: list[str], country: str) -> None:
    if find_actor(db, name) is not None:
        return
    db.add(
        Actor(
            name=name,
            aliases=aliases,
            match_keys=match_keys(name, aliases),
            type="person",
            country_code=country,
        )
    )
    db.flush()


def make_corpus(db: Session) -> dict[str, Event]:
    """Four events that differ in every filterable field; keys name them in assertions."""
    _actor(db, "Sergei Ryabkov", ["Sergey Rybakov", "Сергей Рябков"], "RUS")
    _actor(db, "Nicolás Maduro", [], "VEN")
    _actor(db, "Dmitry Peskov", ["Дмитрий Песков"], "RUS")
    events = {
        "alpha": make_event(
            db,
            title="Alpha statement on the Caribbean",
            summary="Mentions radar upgrades.",
            kind="statement",
            status="reported",
            date="2025-10",
            countries=[
                {"code": "RUS", "role": "supplier"},
                {"code": "VEN", "role": "recipient"},
                {"code": "USA", "role": "target"},
            ],
            actors=[{"name": "Sergei Ryabkov", "role": "speaker"}],
            systems=[{"designation": "Kalibr", "category": "cruise missile", "origin": "RUS"}],
            sources=[
                {"publisher": "TASS", "reliability": "C", "credibility": 3, "quote": "Nothing prevents us"}
            ],
            tags=["caribbean"],
        ),
        "bravo": make_event(
            db,
            title="Bravo shipment lands",
            summary="Shipment of missiles to Iran.",
            kind="transfer",
            status="confirmed",
            date="2025-11-05",
            countries=[{"code": "CHN", "role": "supplier"}, {"code": "IRN", "role": "recipient"}],
            actors=[{"name": "Nicolás Maduro", "role": "other"}],
            systems=[{"designation": "Igla-S", "quantity": 10, "category": "MANPADS", "origin": "RUS"}],
            sources=[{"publisher": "Reuters", "reliability": "A", "credibility": 2}],
            tags=["arms"],
        ),
        "charlie": make_event(
            db,
            title="Charlie deployment, year known only",
            summary="Aircraft deployed.",
            kind="deployment",
            status="claimed",
            date="2018",
            countries=[{"code": "RUS", "role": "supplier"}, {"code": "SYR", "role": "recipient"}],
            actors=[{"name": "Dmitry Peskov", "role": "speaker"}],
            systems=[{"designation": "Su-30MK2", "category": "fighter aircraft", "origin": "RUS"}],
            sources=[{"publisher": "Interfax", "reliability": "E", "credibility": 5}],
            tags=[],
        ),
        "delta": make_event(
            db,
            title="Delta offer that was denied",
            summary="An offer across two months.",
            kind="offer",
            status="denied",
            date="2025-09-20",
            date_end="2025-10-02",
            countries=[{"code": "IRN", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
            actors=[],
            systems=[],
            sources=[
                {
                    "publisher": "The Times",
                    "reliability": "B",
                    "credibility": 2,
                    "quote": "Oreshnik could be supplied",
                }
            ],
            tags=["caribbean", "arms"],
        ),
    }
    return events
