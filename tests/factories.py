"""Plain factory functions for test data, going through the same service as the forms."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.domain.textkeys import match_keys
from app.filters import EventFilter
from app.models import Actor, Event, System
from app.schemas import EventInput
from app.services.events import create_event


def event_data(**overrides: Any) -> dict[str, Any]:
    """A valid event payload; override any field."""
    data: dict[str, Any] = {
        "title": "Russia offers Kalibr missiles to Venezuela",
        "kind": "offer",
        "status": "reported",
        "date": "2025-10-14",
        "summary": "An offer reported by two outlets.",
        "countries": [{"code": "RUS", "role": "supplier"}, {"code": "VEN", "role": "recipient"}],
        "actors": [{"name": "Sergei Ryabkov", "role": "speaker", "type": "person", "country": "RUS"}],
        "systems": [{"designation": "Kalibr", "quantity": 4, "category": "cruise missile", "origin": "RUS"}],
        "sources": [
            {
                "publisher": "TASS",
                "url": "https://tass.com/a",
                "reliability": "C",
                "credibility": 3,
                "quote": "Nothing prevents us",
            }
        ],
        "tags": ["caribbean"],
    }
    data.update(overrides)
    return data


def make_event(db: Session, **overrides: Any) -> Event:
    """Create an event through create_event (audited, searchable)."""
    event = create_event(db, EventInput.model_validate(event_data(**overrides)), None)
    db.flush()
    return event


def make_actor(db: Session, name: str, aliases: list[str] | None = None, **fields: Any) -> Actor:
    """A catalogue actor with aliases (match keys folded as the services fold them)."""
    actor = Actor(name=name, aliases=aliases or [], match_keys=match_keys(name, aliases or []), **fields)
    db.add(actor)
    db.flush()
    return actor


def make_system(db: Session, designation: str, aliases: list[str] | None = None, **fields: Any) -> System:
    """A catalogue system with aliases."""
    system = System(
        designation=designation,
        aliases=aliases or [],
        match_keys=match_keys(designation, aliases or []),
        **fields,
    )
    db.add(system)
    db.flush()
    return system


def from_mapping(mapping: dict[str, Any]) -> EventFilter:
    """A filter from a plain dict whose values are a string or a list of strings."""
    pairs: list[tuple[str, str]] = []
    for k, v in mapping.items():
        pairs.extend((k, x) for x in ([v] if isinstance(v, str) else v))
    return EventFilter.from_pairs(pairs)
