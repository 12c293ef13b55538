"""Typed links between events: add (optionally setting the target's status), remove; audited on both ends.

A link belongs to its source event ("#12 denies #7" is #12's link): the source's CSV line shows it, so its
export line is re-made; both events' histories get a row, so either page tells who linked what and when.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.vocab import LINK_SETS_STATUS, LINK_TYPES, LINK_WORDS
from app.models import Event, EventLink
from app.queries.links import MAX_ID
from app.queries.transfer.export_lines import store_lines
from app.schemas import EventInput
from app.services.audit import Who, record
from app.services.events import event_input, load_event, update_event

# `#12`, `#12 · title` (an autocomplete pick), or a bare `12`; never the leading year of title words.
_REF = re.compile(r"^\s*(?:#\s*(\d{1,12})\b.*|(\d{1,12}))\s*$", re.DOTALL)


class LinkRefused(ValueError):
    """The link cannot be made or removed; the message says why, `field` which input is to blame."""

    def __init__(self, message: str, field: str = "target") -> None:
        super().__init__(message)
        self.field = field


def parse_ref(text: str) -> int | None:
    """The event id a typed reference starts with: `12`, `#12`, or an autocomplete pick `#12 · title`."""
    found = _REF.match(text or "")
    return int(found.group(1) or found.group(2)) if found else None


def link_label(link_type: str, other_id: int, incoming: bool = False) -> str:
    """How a link reads from one end: "denies #7", or from the target "denied by #12"."""
    return f"{LINK_WORDS[link_type][1 if incoming else 0]} #{other_id}"


def _live(session: Session, event_id: int) -> Event:
    event = session.get(Event, event_id) if 0 < event_id <= MAX_ID else None
    if event is None:
        raise LinkRefused(f"there is no event #{event_id}")
    if event.deleted_at is not None:
        raise LinkRefused(f"event #{event_id} was deleted; link to a live event")
    return event


def check_link(session: Session, source_id: int | None, target_id: int | None, link_type: str) -> int:
    """The target's id, or LinkRefused when the link cannot be made (`source_id` None: not saved yet)."""
    if link_type not in LINK_TYPES:
        raise LinkRefused(f"unknown link type “{link_type}”; one of {', '.join(LINK_TYPES)}", "type")
    if target_id is None:
        raise LinkRefused("name the linked event by its number (#12) or pick it from the suggestions")
    if target_id == source_id:
        raise LinkRefused("an event cannot be linked to itself")
    _live(session, target_id)
    if source_id is None:
        return target_id
    exists = session.scalars(
        select(EventLink.id).where(
            EventLink.source_id == source_id, EventLink.target_id == target_id, EventLink.type == link_type
        )
    ).first()
    if exists is not None:
        raise LinkRefused(f"#{source_id} already {link_label(link_type, target_id)}")
    return target_id


def add_link(
    session: Session,
    source_id: int,
    target_id: int | None,
    link_type: str,
    who: Who | None,
    *,
    set_status: bool = False,
) -> EventLink:
    """Link `source_id` to `target_id` with a type; with `set_status`, a denial or retraction also sets the
    target's status (denied / retracted) through the ordinary, versioned and audited edit."""
    target_id = check_link(session, source_id, target_id, link_type)
    source, target = _live(session, source_id), _live(session, target_id)
    # Lock both rows in id order: two analysts linking the same pair queue instead of both inserting.
    for event_id in sorted((source_id, target_id)):
        load_event(session, event_id, lock=True)
    exists = session.scalars(
        select(EventLink).where(
            EventLink.source_id == source_id, EventLink.target_id == target_id, EventLink.type == link_type
        )
    ).first()
    if exists is not None:
        raise LinkRefused(f"#{source_id} already {link_label(link_type, target_id)}")
    link = EventLink(
        source_id=source.id, target_id=target.id, type=link_type, created_by=who.id if who else None
    )
    session.add(link)
    session.flush()
    record(
        session,
        who,
        "link",
        "event",
        source.id,
        {"links": {"before": None, "after": link_label(link_type, target.id)}},
    )
    record(
        session,
        who,
        "link",
        "event",
        target.id,
        {"links": {"before": None, "after": link_label(link_type, source.id, incoming=True)}},
    )
    store_lines(session, [source.id])
    new_status = LINK_SETS_STATUS.get(link_type)
    if set_status and new_status and target.status != new_status:
        data = event_input(target).model_dump()
        data["status"] = new_status
        reason = f"{link_label(link_type, source.id, incoming=True)}"
        update_event(session, target.id, EventInput.model_validate(data), who, target.version, reason)
    return link


def remove_link(session: Session, link_id: int, event_id: int, who: Who | None) -> EventLink:
    """Remove a link seen from one of its ends (`event_id`), audited on both."""
    link = session.get(EventLink, link_id)
    if link is None or event_id not in (link.source_id, link.target_id):
        raise LinkRefused("that link no longer exists")
    for end in sorted((link.source_id, link.target_id)):
        load_event(session, end, lock=True, include_deleted=True)
    label = link_label(link.type, link.target_id)
    record(session, who, "unlink", "event", link.source_id, {"links": {"before": label, "after": None}})
    back = link_label(link.type, link.source_id, incoming=True)
    record(session, who, "unlink", "event", link.target_id, {"links": {"before": back, "after": None}})
    session.delete(link)
    session.flush()
    store_lines(session, [link.source_id])
    return link
