"""Server-side sessions in PostgreSQL: create at login, check timeouts, end at logout."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.auth.tokens import new_token, sha256
from app.config import get_settings
from app.domain import clock
from app.models import User, UserSession

COOKIE_NAME = "sb_session"


def start_session(db: Session, user: User, ip: str | None, user_agent: str | None) -> str:
    """Create a fresh session (a new id at every login) and return the raw cookie token."""
    token = new_token()
    now = clock.utcnow()
    db.add(
        UserSession(
            id=sha256(token),
            user_id=user.id,
            csrf_token=new_token(24),
            created_at=now,
            last_seen_at=now,
            ip=ip,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    user.last_login_at = now
    return token


def load_session(db: Session, token: str | None) -> UserSession | None:
    """The live session for a cookie token; expired or disabled ones are deleted and give None."""
    if not token or len(token) > 200:
        return None
    found = db.scalars(select(UserSession).where(UserSession.id == sha256(token))).first()
    if found is None:
        return None
    settings = get_settings()
    now = clock.utcnow()
    idle = timedelta(minutes=settings.session_idle_minutes)
    absolute = timedelta(hours=settings.session_absolute_hours)
    if not found.user.is_active or now - found.last_seen_at > idle or now - found.created_at > absolute:
        db.delete(found)
        db.commit()
        return None
    # Touch at most once a minute so a busy page does not write on every request.
    if now - found.last_seen_at > timedelta(minutes=1):
        found.last_seen_at = now
        db.commit()
    return found


def end_session(db: Session, token: str | None) -> None:
    """Delete a session on the server (logout), so the old cookie is worthless."""
    if token:
        db.execute(delete(UserSession).where(UserSession.id == sha256(token)))


def end_user_sessions(db: Session, user_id: int) -> None:
    """Delete every session of a user (account disabled or password changed)."""
    db.execute(delete(UserSession).where(UserSession.user_id == user_id))
