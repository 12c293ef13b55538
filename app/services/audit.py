"""Writing the audit log: one row per data change or security event."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy.orm import Session

from app.models import AuditEntry

security_log = logging.getLogger("signalboard.security")


class Who(Protocol):
    """Anything with an id and a username (a User, or a system actor in the CLI)."""

    id: int
    username: str


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Field-by-field changes between two snapshots: {field: {before, after}} for fields that differ."""
    return {
        key: {"before": before.get(key), "after": after.get(key)}
        for key in dict.fromkeys([*before, *after])
        if before.get(key) != after.get(key)
    }


def record(
    session: Session,
    who: Who | None,
    action: str,
    entity_type: str,
    entity_id: int | None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Add one audit row to the session (committed with the change it describes)."""
    entry = AuditEntry(
        user_id=who.id if who else None,
        username=who.username if who else "system",
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        changes=changes or {},
        reason=reason or None,
        ip=ip,
    )
    session.add(entry)
    return entry


def security_event(
    session: Session, who: Who | None, action: str, details: dict[str, Any], ip: str | None = None
) -> None:
    """Log a login, failure or denial to the audit table and the security logger (never secrets)."""
    record(session, who, action, "security", who.id if who else None, details, ip=ip)
    security_log.info(
        "%s user=%s ip=%s %s",
        action,
        who.username if who else details.get("username", "-"),
        ip or "-",
        details,
    )
