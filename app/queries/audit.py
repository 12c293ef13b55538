"""Reading the audit log."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import AuditEntry


def event_history(session: Session, event_id: int) -> list[AuditEntry]:
    """Every recorded change of an event, newest first."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == "event", AuditEntry.entity_id == event_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    return list(session.scalars(stmt))
