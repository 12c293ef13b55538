"""The review queue: due events oldest clock first, and the due count for the top bar (facts copy)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy.orm import Session

from app.domain import clock
from app.filters import EventFilter
from app.queries.aggregates.cache import cached, data_version
from app.queries.aggregates.facts.selection import micros
from app.queries.rows import TimelineRow, timeline_rows


@dataclass
class ReviewPage:
    """One page of the queue and the cursor of the next (None on the last)."""

    events: list[TimelineRow]
    next_cursor: str | None


def _minute() -> datetime:
    # Kept answers are keyed by the minute too: "due" moves with the clock, not only with writes.
    return clock.utcnow().replace(second=0, microsecond=0)


def parse_cursor(text: str) -> tuple[int, int]:
    """A queue cursor ("<clock microseconds>-<id>"); ValueError when it is not one."""
    try:
        at, ident = text.split("-")
        return int(at), int(ident)
    except ValueError as exc:
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ValueError(
            f"the page cursor is not valid (“{shown}”); start again from the first page"
        ) from exc


def review_page(session: Session, f: EventFilter, after: tuple[int, int] | None, limit: int) -> ReviewPage:
    """Due events matching the filter, the longest waiting first (review clock, then id)."""
    from app.queries.aggregates import facts  # facts builds on the events module

    due = replace(f, due=True)
    key = ("review", due.query_string(), due.system_family, after, limit, data_version(session), _minute())
    ids = cached(key, lambda: facts.selection(session, due).review_ids(after, limit + 1))
    rows = timeline_rows(session, ids)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = f"{micros(rows[-1].review_clock_at)}-{rows[-1].id}" if more and rows else None
    return ReviewPage(rows, next_cursor)


def due_total(session: Session, f: EventFilter | None = None) -> int:
    """How many events (matching `f`, default all) are due for review now."""
    from app.queries.aggregates import facts

    due = replace(f or EventFilter(), due=True)
    key = ("due-total", due.query_string(), due.system_family, data_version(session), _minute())
    return cached(key, lambda: facts.selection(session, due).total())
