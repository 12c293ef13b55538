"""Reads behind the editing pages: retried creates, the deleted-events list, reference link counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import AuditEntry, Event
from app.services.events import event_options


def event_id_for_token(session: Session, token: str | None) -> int | None:
    """The event a create form with this client token already made (a double submit), if any."""
    try:
        parsed = uuid.UUID(token) if token else None
    except ValueError:
        return None
    if parsed is None:
        return None
    return session.scalar(select(Event.id).where(Event.client_token == parsed))


@dataclass(frozen=True)
class DeletedEvent:
    """A soft-deleted event with who deleted it and why (from its latest 'delete' audit row)."""

    event: Event
    deleted_by: str | None
    reason: str | None


def deleted_events(session: Session, limit: int = 200) -> list[DeletedEvent]:
    """Soft-deleted events, most recently deleted first (the admin's restore list); one query."""
    last_delete = (
        select(AuditEntry.entity_id, AuditEntry.username, AuditEntry.reason)
        .where(AuditEntry.entity_type == "event", AuditEntry.action == "delete")
        .distinct(AuditEntry.entity_id)
        .order_by(AuditEntry.entity_id, AuditEntry.id.desc())
        .subquery()
    )
    stmt = (
        select(Event, last_delete.c.username, last_delete.c.reason)
        .outerjoin(last_delete, last_delete.c.entity_id == Event.id)
        .where(Event.deleted_at.is_not(None))
        .order_by(Event.deleted_at.desc(), Event.id.desc())
        .limit(limit)
    )
    return [DeletedEvent(e, who, why) for e, who, why in session.execute(stmt)]


def count_deleted(session: Session) -> int:
    """How many events are soft-deleted."""
    return int(session.scalar(select(func.count()).where(Event.deleted_at.is_not(None))) or 0)


def event_count(session: Session, column: Any, ref_id: int) -> int:
    """How many visible events link this entry (`column`: the link table's column naming it)."""
    link = column.class_
    stmt = (
        select(func.count(func.distinct(link.event_id)))
        .join(Event, Event.id == link.event_id)
        .where(column == ref_id, Event.deleted_at.is_(None))
    )
    return int(session.scalar(stmt) or 0)


def owning_keys(session: Session, model: Any, keys: list[str], except_id: int) -> list[Any]:
    """Other actors or systems (`model`) whose name or alias folds to one of `keys` (a rename must not
    steal a name)."""
    stmt = select(model).where(model.match_keys.overlap(keys), model.id != except_id).order_by(model.id)
    return list(session.scalars(stmt))


def deleted_event_or_none(session: Session, event_id: int) -> Event | None:
    """A soft-deleted event with its links (what an admin sees before restoring it), or None."""
    stmt = select(Event).where(Event.id == event_id, Event.deleted_at.is_not(None)).options(*event_options())
    return session.scalars(stmt).unique().one_or_none()


def entity_history(session: Session, entity_type: str, entity_id: int, limit: int = 50) -> list[AuditEntry]:
    """Recorded changes of an actor or system, newest first."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == entity_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))
