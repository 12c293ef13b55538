"""Personal keys a user makes, lists and revokes on /account: API tokens and feed tokens.

Both kinds work the same way (only a hash is stored, the raw value is shown once, revoking is audited);
they differ in their table, their visible prefix and what accepts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.tokens import new_token, sha256
from app.domain import clock
from app.models import ApiToken, FeedToken, User
from app.services.audit import record

Key = ApiToken | FeedToken


@dataclass(frozen=True)
class KeyKind:
    """One kind of personal key: its table, the marker its raw value starts with, its audit entity."""

    model: type[ApiToken] | type[FeedToken]
    prefix: str
    shown: int  # leading characters of the raw value kept, so a user recognises a key in the list
    entity: str


def live_keys(db: Session, kind: KeyKind, user_id: int) -> list[Key]:
    """A user's live keys of this kind, newest first."""
    m = kind.model
    live = select(m).where(m.user_id == user_id, m.revoked_at.is_(None))
    return list(db.scalars(live.order_by(m.created_at.desc(), m.id.desc())))


def create_key(db: Session, kind: KeyKind, user: User, name: str) -> tuple[Key, str]:
    """A new key: only its hash is stored, the raw value is returned once (audited)."""
    raw = kind.prefix + new_token(32)
    key = kind.model(user_id=user.id, name=name, token_hash=sha256(raw), prefix=raw[: kind.shown])
    db.add(key)
    db.flush()
    record(db, user, "create", kind.entity, key.id, {"name": {"before": None, "after": name}})
    return key, raw


def revoke_key(db: Session, kind: KeyKind, user: User, key_id: int) -> bool:
    """Revoke one of the user's own live keys; False when there is no such live key of theirs."""
    m = kind.model
    mine = select(m).where(m.id == key_id, m.user_id == user.id, m.revoked_at.is_(None))
    key = cast(Key | None, db.scalars(mine).first())
    if key is None:
        return False
    key.revoked_at = clock.utcnow()
    record(db, user, "delete", kind.entity, key.id, {"revoked": {"before": False, "after": True}})
    return True
