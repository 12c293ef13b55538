"""Likely duplicates of a new event: near in time, with the same dyad and kind or a similar title."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Exists, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from app.models import Event, EventCountry
from app.schemas import EventInput

WINDOW = timedelta(days=14)
TITLE_SIMILARITY = 0.45


@dataclass(frozen=True)
class Duplicate:
    """A possible duplicate and why it was flagged."""

    event: Event
    similarity: float
    same_dyad_and_kind: bool


def find_duplicates(
    session: Session, data: EventInput, exclude_id: int | None = None, limit: int = 5
) -> list[Duplicate]:
    """Visible events that look like `data` (one query)."""
    start, end = data.start(), data.end() or data.start()
    suppliers = [c.code for c in data.countries if c.role == "supplier"]
    recipients = [c.code for c in data.countries if c.role == "recipient"]

    def has(role: str, codes: list[str]) -> Exists:
        return exists().where(
            EventCountry.event_id == Event.id, EventCountry.role == role, EventCountry.country_code.in_(codes)
        )

    # Both tests only look near the event's own period (as the import's check does): a similar title
    # years apart is another event, and the window keeps this one index range scan, not a scan of
    # every title.
    near = and_(Event.period_end >= start.start - WINDOW, Event.date_start <= end.end + WINDOW)
    same_dyad = Event.kind == data.kind
    if suppliers:
        same_dyad = and_(same_dyad, has("supplier", suppliers))
    if recipients:
        same_dyad = and_(same_dyad, has("recipient", recipients))
    if not suppliers and not recipients:
        same_dyad = and_(same_dyad, Event.id.is_(None))  # no dyad: only the title can match
    similarity = func.similarity(Event.title, data.title)
    stmt = (
        select(Event, similarity.label("sim"), same_dyad.label("dyad"))
        .where(Event.deleted_at.is_(None), near, or_(same_dyad, similarity >= TITLE_SIMILARITY))
        .order_by(similarity.desc(), Event.date_start.desc())
        .limit(limit)
    )
    if exclude_id is not None:
        stmt = stmt.where(Event.id != exclude_id)
    return [Duplicate(row[0], float(row[1]), bool(row[2])) for row in session.execute(stmt)]
