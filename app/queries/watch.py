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
from sqlalchemy import ColumnElement, and_, or_, select, tuple_
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session

from app.filters import EventFilter
from app.models import AuditEntry, Event
from app.queries.events import event_by_ids

# At most this many written events are read for one "new" count (the newest ones): past it the count is a
# lower bound, shown as "N+ new", so a view not opened since a bulk import stays one bounded read.
NEW_CAP = 100_000
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


@dataclass(frozen=True)
class NewCount:
    """Events of a filter written since a moment; `partial` when only the newest NEW_CAP writes were read."""

    count: int
    partial: bool = False


@dataclass(frozen=True)
class Writes:
    """The events written after a moment, newest first (at most NEW_CAP), with when: one read for a menu."""

    ids: np.ndarray
    at: np.ndarray  # seconds since 1970, aligned with ids
    capped: bool  # NEW_CAP writes were read: older ones may be missing


def written_since(session: Session, since: datetime) -> Writes:
    """Read the newest event writes after `since` (the Views menu reads once for its oldest moment)."""
    newest = (
        select(AuditEntry.entity_id, AuditEntry.at)
        .where(_written(), AuditEntry.at > since)
        .order_by(AuditEntry.at.desc())
        .limit(NEW_CAP)
    )
    rows = session.execute(newest).all()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    at = np.fromiter((r[1].timestamp() for r in rows), dtype=np.float64, count=len(rows))
    return Writes(ids, at, len(rows) == NEW_CAP)


def new_since(session: Session, f: EventFilter, since: datetime, writes: Writes | None = None) -> NewCount:
    """How many events the filter matches that were created, changed or restored after `since`.

    `writes` read from a moment no later than `since` (written_since) serves several views at once.
    """
    from app.queries.aggregates import facts

    writes = writes if writes is not None else written_since(session, since)
    after = writes.at > since.timestamp()
    written = writes.ids[after]
    if not len(written):
        return NewCount(0)
    chosen = facts.selection(session, f)
    rows = chosen.facts.rows_of(np.unique(written))
    count = len(np.unique(chosen.facts.ids[rows[chosen.mask()[rows]]]))
    # Capped: writes older than the oldest one read are unknown; they matter if they may be after `since`.
    return NewCount(count, partial=writes.capped and bool(writes.at[-1] > since.timestamp()))


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


def _newest_writes(session: Session, ids: np.ndarray | None) -> Iterator[list[AuditEntry]]:
    """Feed-worthy writes newest first, in batches: of the given events, or of all events (keyset pages)."""
    stmt = select(AuditEntry).where(_feed_writes()).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if ids is not None:
        yield list(session.scalars(stmt.where(AuditEntry.entity_id.in_([int(i) for i in ids]))))
        return
    after: tuple[datetime, int] | None = None
    for _ in range(WALK_MAX // WALK_BATCH):
        page = stmt if after is None else stmt.where(tuple_(AuditEntry.at, AuditEntry.id) < after)
        batch = list(session.scalars(page.limit(WALK_BATCH)))
        yield batch
        if len(batch) < WALK_BATCH:
            return
        after = (batch[-1].at, batch[-1].id)


def feed_items(session: Session, f: EventFilter, limit: int) -> list[FeedItem]:
    """The filter's events by their latest feed-worthy write, newest first (one entry per event)."""
    from app.queries.aggregates import facts

    chosen = facts.selection(session, f)
    mask = chosen.mask()
    matching = int(mask.sum())
    ids = chosen.facts.ids[mask] if matching <= BY_ID_LIMIT else None
    picked: dict[int, AuditEntry] = {}
    for batch in _newest_writes(session, ids) if matching else ():
        written = np.array([e.entity_id for e in batch if e.entity_id is not None], dtype=np.int64)
        rows = chosen.facts.rows_of(written)
        inside = {int(i) for i in chosen.facts.ids[rows[mask[rows]]]}
        for entry in batch:
            if entry.entity_id in inside and entry.entity_id not in picked:
                picked[entry.entity_id] = entry
                if len(picked) >= limit:
                    break
        if len(picked) >= limit:
            break
    events = {e.id: e for e in session.scalars(event_by_ids(list(picked))).unique()}
    return [
        FeedItem(events[i], a.id, a.at, a.action, a.changes, a.username or "system")
        for i, a in picked.items()
        if i in events
    ]
