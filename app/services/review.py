"""The review queue's write: "reviewed, still unconfirmed" restarts an event's review clock, audited."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.domain import clock
from app.domain.vocab import REVIEWABLE
from app.models import Event
from app.services.audit import Who, record
from app.services.events import load_event

MAX_NOTE = 2000


class ReviewRefused(ValueError):
    """The review cannot be recorded (the message says why, for the form or the API)."""


def mark_reviewed(session: Session, event_id: int, who: Who | None, note: str) -> Event:
    """Restart the review clock of a claimed or reported event, with the reviewer's note in the history.

    The event's fields and version do not change: a review is a judgement about the event, not an edit.
    """
    note = " ".join(note.split())
    if not note:
        raise ReviewRefused("write a short note: what was checked, and why the event stays unconfirmed")
    if len(note) > MAX_NOTE:
        raise ReviewRefused(f"the note may be at most {MAX_NOTE} characters (got {len(note)})")
    event = load_event(session, event_id, lock=True)
    if event.status not in REVIEWABLE:
        raise ReviewRefused(f"only claimed or reported events are reviewed; this one is {event.status}")
    before, event.review_clock_at = event.review_clock_at, clock.utcnow()
    changes = {"review_clock": {"before": before.isoformat(), "after": event.review_clock_at.isoformat()}}
    record(session, who, "review", "event", event.id, changes, note)
    session.flush()
    return event
