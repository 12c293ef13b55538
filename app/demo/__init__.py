"""Demo data: the project's own fixture, loaded idempotently (twice loads once)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.textkeys import match_keys
from app.models import Actor, Event, Origin, System
from app.schemas import EventInput
from app.services.events import create_event, find_actor, find_origin, find_system

FIXTURE = Path(__file__).with_name("demo-events.yaml")
# Demo events carry client tokens derived from their keys, so a second load finds them.
NAMESPACE = uuid.UUID("6f1d4c1e-2b7a-4c55-9a51-5e0d7c3b9a10")


def demo_token(key: str) -> uuid.UUID:
    """The fixed client token of a demo event."""
    return uuid.uuid5(NAMESPACE, f"demo:{key}")


def load_fixture() -> dict[str, Any]:
    """The parsed YAML fixture."""
    data: dict[str, Any] = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    return data


def seed_demo(session: Session) -> int:
    """Load the demo actors, systems, origins and events that are missing; return the number of new events."""
    data = load_fixture()
    for a in data["actors"]:
        if find_actor(session, a["name"]) is None:
            session.add(
                Actor(
                    name=a["name"],
                    aliases=a.get("aliases", []),
                    match_keys=match_keys(a["name"], a.get("aliases", [])),
                    type=a["type"],
                    country_code=a.get("country"),
                    title=a.get("title"),
                )
            )
    for s in data["systems"]:
        if find_system(session, s["designation"]) is None:
            session.add(
                System(
                    designation=s["designation"],
                    aliases=s.get("aliases", []),
                    match_keys=match_keys(s["designation"], s.get("aliases", [])),
                    category=s.get("category"),
                    origin_code=s.get("origin"),
                )
            )
    for o in data.get("origins", []):
        if find_origin(session, o["name"]) is None:
            aliases = o.get("aliases", [])
            session.add(Origin(name=o["name"], aliases=aliases, match_keys=match_keys(o["name"], aliases)))
    session.flush()
    for s in (s for s in data["systems"] if s.get("parent")):  # families (Su-30MK2 -> Su-30)
        variant, family = find_system(session, s["designation"]), find_system(session, s["parent"])
        if variant is not None and family is not None and variant.parent_id is None:
            variant.parent_id = family.id
    session.flush()
    added = 0
    for raw in data["events"]:
        token = demo_token(raw["key"])
        if session.scalar(select(Event.id).where(Event.client_token == token)) is not None:
            continue
        fields = {k: v for k, v in raw.items() if k != "key"}
        create_event(session, EventInput.model_validate({**fields, "client_token": str(token)}), None)
        added += 1
    return added
