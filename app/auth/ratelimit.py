"""Failed-login limits per account and per address, counted in the login_attempts table."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.config import get_settings
from app.domain import clock
from app.models import LoginAttempt

PER_ADDRESS_FACTOR = 4  # one address may fail for several accounts before it is stopped


def login_blocked(db: Session, username: str, ip: str | None) -> bool:
    """True when the account or the address has failed too often within the window."""
    settings = get_settings()
    since = clock.utcnow() - timedelta(minutes=settings.login_window_minutes)
    failures = select(LoginAttempt).where(LoginAttempt.at >= since, LoginAttempt.success.is_(False))
    by_user = db.scalar(
        select(func.count()).select_from(
            failures.where(func.lower(LoginAttempt.username) == username.lower()).subquery()
        )
    )
    if (by_user or 0) >= settings.login_max_failures:
        return True
    if ip is None:
        return False
    by_ip = db.scalar(select(func.count()).select_from(failures.where(LoginAttempt.ip == ip).subquery()))
    return (by_ip or 0) >= settings.login_max_failures * PER_ADDRESS_FACTOR


def note_attempt(db: Session, username: str, ip: str | None, *, success: bool) -> None:
    """Record an attempt; a success clears the account's earlier failures; old rows are pruned."""
    # Rows past the window count for nothing: drop this name's and address's old ones (both indexed).
    stale = clock.utcnow() - timedelta(minutes=get_settings().login_window_minutes) - timedelta(days=1)
    db.execute(
        delete(LoginAttempt).where(
            func.lower(LoginAttempt.username) == username.lower(), LoginAttempt.at < stale
        )
    )
    if ip is not None:
        db.execute(delete(LoginAttempt).where(LoginAttempt.ip == ip, LoginAttempt.at < stale))
    if success:
        db.execute(
            delete(LoginAttempt).where(
                func.lower(LoginAttempt.username) == username.lower(), LoginAttempt.success.is_(False)
            )
        )
    db.add(LoginAttempt(username=username[:200], ip=ip, success=success, at=clock.utcnow()))
