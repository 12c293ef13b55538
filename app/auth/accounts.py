"""Account administration: create users, change roles, disable, reset passwords, personal API tokens."""

from __future__ import annotations

import re
from typing import cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.passwords import as_sentence, generate_password, hash_password, password_problem
from app.auth.personal_keys import KeyKind, create_key, live_keys, revoke_key
from app.auth.sessions import end_user_sessions
from app.domain.vocab import USER_ROLES
from app.models import ApiToken, User
from app.services.audit import Who, record

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")  # the same rule as the users table's check
TOKEN_PREFIX = "sb_"  # noqa: S105 - a visible marker, not a secret


class AccountError(ValueError):
    """A refused account change, with a message for the person who asked."""


def username_problem(db: Session, username: str) -> str | None:
    """Why a new username is refused, or None."""
    if not USERNAME_RE.match(username):
        return "Use 2–64 letters, digits, dots, dashes, underscores or @."
    if db.scalar(select(User.id).where(func.lower(User.username) == username.lower())):
        return "This username is taken."
    return None


def one_time_password() -> str:
    """A random password to hand over once; the user must replace it at first login."""
    return generate_password()


def list_users(db: Session) -> list[User]:
    """Every account, active ones first, then by name."""
    return list(db.scalars(select(User).order_by(User.is_active.desc(), func.lower(User.username))))


def create_user(
    db: Session, actor: Who | None, username: str, role: str, password: str | None = None
) -> tuple[User, str | None]:
    """Create an account; without a password one is generated, returned once, and must be changed."""
    if role not in USER_ROLES:
        raise AccountError("Unknown role.")
    problem = username_problem(db, username)
    if problem:
        raise AccountError(problem)
    if password is not None:
        weak = password_problem(password, username)
        if weak:
            raise AccountError(as_sentence(weak))
    generated = one_time_password() if password is None else None
    user = User(
        username=username,
        password_hash=hash_password(password or generated or ""),
        role=role,
        must_change_password=generated is not None,
    )
    db.add(user)
    db.flush()
    record(
        db,
        actor,
        "create",
        "user",
        user.id,
        {"username": {"before": None, "after": username}, "role": {"before": None, "after": role}},
    )
    return user, generated


def _guard_self(actor: Who, user: User) -> None:
    if actor.id == user.id:
        raise AccountError("You cannot change your own role or disable yourself; ask another admin.")


def set_role(db: Session, actor: Who, user: User, role: str) -> None:
    """Change a user's role (takes effect on their next request)."""
    if role not in USER_ROLES:
        raise AccountError("Unknown role.")
    _guard_self(actor, user)
    if role != user.role:
        record(db, actor, "update", "user", user.id, {"role": {"before": user.role, "after": role}})
        user.role = role


def set_active(db: Session, actor: Who, user: User, active: bool) -> None:
    """Enable or disable an account; disabling ends its sessions and its API tokens stop working."""
    _guard_self(actor, user)
    if active != user.is_active:
        record(
            db, actor, "update", "user", user.id, {"is_active": {"before": user.is_active, "after": active}}
        )
        user.is_active = active
    if not active:
        end_user_sessions(db, user.id)


def reset_password(db: Session, actor: Who, user: User) -> str:
    """Give a user a new one-time password (returned once) and end their sessions."""
    password = one_time_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    end_user_sessions(db, user.id)
    record(db, actor, "update", "user", user.id, {"password": {"before": "***", "after": "reset"}})
    return password


API_TOKENS = KeyKind(ApiToken, TOKEN_PREFIX, 11, "api_token")


def user_tokens(db: Session, user_id: int) -> list[ApiToken]:
    """A user's live API tokens, newest first."""
    return cast(list[ApiToken], live_keys(db, API_TOKENS, user_id))


def create_token(db: Session, user: User, name: str) -> tuple[ApiToken, str]:
    """A new personal access token: only its hash is stored; the raw value is returned once."""
    return cast(tuple[ApiToken, str], create_key(db, API_TOKENS, user, name))


def revoke_token(db: Session, user: User, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False when there is no such live token of theirs."""
    return revoke_key(db, API_TOKENS, user, token_id)


def utc_minute(moment: object) -> str:
    """A stored timestamp as 'YYYY-MM-DD HH:MM UTC' for account pages ('never' when empty)."""
    from datetime import UTC, datetime

    if not isinstance(moment, datetime):
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
