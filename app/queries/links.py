"""Reading links between events: both ends of an event's links, and title suggestions to link to."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.domain.vocab import LINK_SETS_STATUS, LINK_WORDS
from app.filters import EventFilter
from app.models import Event, EventLink

MAX_ID = 2**31 - 1  # event ids are PostgreSQL integers


@dataclass(frozen=True)
class LinkView:
    """One link as seen from one of its events: the words from that side and the event at the other end."""

    id: int
    type: str
    incoming: bool  # True: the other event points at this one ("denied by #12")
    other_id: int
    other_title: str
    other_status: str
    other_kind: str
    other_date: date
    other_precision: str

    @property
    def words(self) -> str:
        """ "denies" from the source, "denied by" from the target."""
        return LINK_WORDS[self.type][1 if self.incoming else 0]


def links_of(session: Session, event_id: int) -> list[LinkView]:
    """The event's links both ways (outgoing first), leaving out those whose other end is deleted."""
    return links_by_event(session, [event_id]).get(event_id, [])


def links_by_event(session: Session, event_ids: list[int]) -> dict[int, list[LinkView]]:
    """Links of many events at once (two queries whatever their number): a page of the API list."""
    other = aliased(Event)
    found: dict[int, list[LinkView]] = {}
    if not event_ids:
        return found
    ends = (
        (False, EventLink.source_id, EventLink.target_id),
        (True, EventLink.target_id, EventLink.source_id),
    )
    shown = (other.id, other.title, other.status, other.kind, other.date_start, other.date_precision)
    for incoming, near, far in ends:
        stmt = (
            select(near, EventLink.id, EventLink.type, *shown)
            .join(other, other.id == far)
            .where(near.in_(event_ids), other.deleted_at.is_(None))
            .order_by(EventLink.id)
        )
        for row in session.execute(stmt):
            found.setdefault(row[0], []).append(LinkView(row[1], row[2], incoming, *row[3:]))
    return found


def outgoing_links(session: Session, event_ids: list[int]) -> dict[int, list[tuple[str, int]]]:
    """(type, target id) of each event's own links, in the order they were made (the CSV's `links`)."""
    found: dict[int, list[tuple[str, int]]] = {}
    stmt = (
        select(EventLink.source_id, EventLink.type, EventLink.target_id)
        .where(EventLink.source_id.in_(event_ids))
        .order_by(EventLink.source_id, EventLink.id)
    )
    for source, link_type, target in session.execute(stmt):
        found.setdefault(source, []).append((link_type, target))
    return found


def suggest_events(session: Session, text: str, exclude: int | None = None, limit: int = 10) -> list[Event]:
    """Live events to link to: by number (`12`, `#12`) or by words of the title, the last one a prefix.

    Words go through the full-text index (title and summary; titles weigh most), so a million events
    answer from the GIN index rather than a scan of every title.
    """
    text = text.strip().lstrip("#").strip()
    stmt = select(Event).where(Event.deleted_at.is_(None))
    if exclude is not None:
        stmt = stmt.where(Event.id != exclude)
    if text.isdecimal():
        if len(text) > 10 or int(text) > MAX_ID:  # no event has a number beyond PostgreSQL's integer
            return []
        stmt = stmt.where(Event.id == int(text))
    else:
        words = [w for w in re.findall(r"\w+", text.lower())][:6]
        if not words:
            return []
        query = " & ".join([*words[:-1], f"{words[-1]}:*"])
        stmt = stmt.where(Event.search_vector.op("@@")(func.to_tsquery("english", query)))
    return list(session.scalars(stmt.order_by(Event.date_start.desc(), Event.id.desc()).limit(limit)))


def offers_status(link_type: str) -> str | None:
    """The status a link of this type offers to set on its target (denied, retracted), if any."""
    return LINK_SETS_STATUS.get(link_type)


@dataclass(frozen=True)
class Fulfilment:
    """A pledge (agreement, offer, …) of a dyad and the delivery whose `fulfils` link points at it."""

    pledge: Event
    delivery: Event

    @property
    def days(self) -> int:
        """Days from the pledge's start to the delivery's."""
        return (self.delivery.date_start - self.pledge.date_start).days


MAX_FULFILMENTS = 100


def fulfilments(session: Session, f: EventFilter) -> list[Fulfilment]:
    """Pledges matching the filter (a dyad's ladder: its supplier and recipient) with their deliveries.

    Few rows: a link table lookup by the pledges' ids, then both ends with their systems (quantities).
    """
    from app.queries.events import event_by_ids, matching_ids

    pairs = session.execute(
        select(EventLink.target_id, EventLink.source_id)
        .join(Event, Event.id == EventLink.source_id)
        .where(
            EventLink.type == "fulfils",
            EventLink.target_id.in_(matching_ids(f).scalar_subquery()),
            Event.deleted_at.is_(None),
        )
        .order_by(EventLink.id)
        .limit(MAX_FULFILMENTS)
    ).all()
    wanted = sorted({i for pair in pairs for i in pair})
    events = {e.id: e for e in session.scalars(event_by_ids(wanted)).unique()}
    found = [Fulfilment(events[p], events[d]) for p, d in pairs if p in events and d in events]
    return sorted(
        found, key=lambda x: (x.pledge.date_start, x.pledge.id, x.delivery.date_start, x.delivery.id)
    )
