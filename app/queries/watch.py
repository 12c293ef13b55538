"""What the Views menu and the feeds ask: events of a filter created or changed since a moment.

Both read the audit log (indexed by time, and by entity and time) for the events written and keep those
the filter matches on the facts copy, so a view's "new" count and its feed cost one indexed read and a
mask look-up, whatever the number of events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session

from app.filters import EventFilter
from app.models import AuditEntry, Event
from app.queries.events import event_by_ids

# Beyond this many written events, a "new" count reads "10,000+": the menu stays cheap for a view not
# opened since a bulk import.
NEW_CAP = 10_000
# Event writes a feed shows again: a new event, a restored one, and an edit of its status or of what
# sets its place on the ladder (kind, or the stage set by hand). Other edits (a typo) do not.
LADDER_FIELDS = ("status", "kind", "stage_override")
# A filter matching at most this many events asks the audit log for those events by id; a wider one
# walks the newest writes and keeps those in the filter.
BY_ID_LIMIT = 2_000
WALK_BATCH = 1_000
WALK_MAX = 50_000


def _written() -> ColumnElement[bool]:
    return and_(AuditEntry.entity_type == "event", AuditEntry.action.in_(("create", "update", "restore")))


def new_since(session: Session, f: EventFilter, since: datetime) -> int:
    """How many events the filter matches that were created or changed after `since` (NEW_CAP + 1 at most)."""
    from app.queries.aggregates import facts

    stmt = (
        select(AuditEntry.entity_id)
        .where(_written(), AuditEntry.at > since)
        .group_by(AuditEntry.entity_id)
        .limit(NEW_CAP + 1)
    )
    ids = np.fromiter(session.scalars(stmt), dtype=np.int64)
    if not len(ids):
        return 0
    chosen = facts.selection(session, f)
    rows = chosen.facts.rows_of(ids)
    return len(np.unique(chosen.facts.ids[rows[chosen.mask()[rows]]]))


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed: an event, the write that brought it back (its audit row), and what changed."""

    event: Event
    audit_id: int
    at: datetime
    action: str
    changes: dict[str, Any]
    username: str


def _feed_writes() -> ColumnElement[bool]:
    return and_(
        AuditEntry.entity_type == "event",
        or_(
            AuditEntry.action.in_(("create", "restore")),
            and_(AuditEntry.action == "update", AuditEntry.changes.has_any(array(LADDER_FIELDS))),
        ),
    )


def _newest_writes(session: Session, ids: np.ndarray | None) -> Iterator[AuditEntry]:
    """Feed-worthy writes newest first: of the given events, or of all events batch by batch."""
    stmt = select(AuditEntry).where(_feed_writes()).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if ids is not None:
        yield from session.scalars(stmt.where(AuditEntry.entity_id.in_([int(i) for i in ids])))
        return
    for offset in range(0, WALK_MAX, WALK_BATCH):
        batch = list(session.scalars(stmt.offset(offset).limit(WALK_BATCH)))
        yield from batch
        if len(batch) < WALK_BATCH:
            return


def feed_items(session: Session, f: EventFilter, limit: int) -> list[FeedItem]:
    """The filter's events by their latest feed-worthy write, newest first (one entry per event)."""
    from app.queries.aggregates import facts

    chosen = facts.selection(session, f)
    mask = chosen.mask()
    matching = int(mask.sum())
    ids = chosen.facts.ids[mask] if matching <= BY_ID_LIMIT else None
    picked: dict[int, AuditEntry] = {}
    if matching:
        for entry in _newest_writes(session, ids):
            event_id = entry.entity_id
            if event_id is None or event_id in picked:
                continue
            if ids is None:
                rows = chosen.facts.rows_of(np.array([event_id], dtype=np.int64))
                if not mask[rows].any():
                    continue
            picked[event_id] = entry
            if len(picked) >= limit:
                break
    events = {e.id: e for e in session.scalars(event_by_ids(list(picked))).unique()}
    return [
        FeedItem(events[i], a.id, a.at, a.action, a.changes, a.username or "system")
        for i, a in picked.items()
        if i in events
    ]
