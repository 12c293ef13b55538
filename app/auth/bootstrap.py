"""First start: create an admin with a one-time password when no account exists."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.auth.passwords import generate_password, hash_password
from app.models import User
from app.services.audit import record


def ensure_first_admin(db: Session) -> str | None:
    """Create `admin` with a random password if there are no users; return that password (else None)."""
    if db.scalar(select(func.count()).select_from(User)):
        return None
    password = generate_password()
    admin = User(
        username="admin", password_hash=hash_password(password), role="admin", must_change_password=True
    )
    db.add(admin)
    try:
        db.flush()
    except IntegrityError:  # another process (a second worker) created it at the same moment
        db.rollback()
        return None
    record(
        db,
        None,
        "create",
        "user",
        admin.id,
        {"username": {"before": None, "after": "admin"}},
        reason="first start",
    )
    db.commit()
    return password
