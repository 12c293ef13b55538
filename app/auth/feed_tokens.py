"""Feed tokens: per-user, revocable, read-only keys that open Atom feeds and nothing else.

A feed reader cannot log in, so the feed's address carries the key. It is not a session and not an API
token: a different table and prefix, accepted only by the feed routes (app/web/feeds.py), so a leaked feed
address reads that user's feeds and cannot open a page, call the API or write.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.personal_keys import KeyKind, create_key, live_keys, revoke_key
from app.auth.tokens import sha256
from app.domain import clock
from app.models import FeedToken, User

FEED_PREFIX = "sbf_"
# What create_feed_token makes: the prefix and 43 URL-safe characters (32 random bytes).
FEED_TOKEN_RE = re.compile(r"^sbf_[A-Za-z0-9_-]{43}$")


FEED_TOKENS = KeyKind(FeedToken, FEED_PREFIX, 12, "feed_token")


def user_feed_tokens(db: Session, user_id: int) -> list[FeedToken]:
    """A user's live feed tokens, newest first."""
    return cast(list[FeedToken], live_keys(db, FEED_TOKENS, user_id))


def create_feed_token(db: Session, user: User, name: str) -> tuple[FeedToken, str]:
    """A new feed token: only its hash is stored, the raw value is returned once (audited)."""
    return cast(tuple[FeedToken, str], create_key(db, FEED_TOKENS, user, name))


def revoke_feed_token(db: Session, user: User, token_id: int) -> bool:
    """Revoke one of the user's own live feed tokens; False when there is none with this id."""
    return revoke_key(db, FEED_TOKENS, user, token_id)


def feed_user(db: Session, raw: str) -> User | None:
    """The active user a live feed token belongs to, or None (malformed, unknown, revoked, disabled)."""
    if not FEED_TOKEN_RE.match(raw):
        return None  # no database look-up for something that was never a token
    token = db.scalars(
        select(FeedToken).where(FeedToken.token_hash == sha256(raw), FeedToken.revoked_at.is_(None))
    ).first()
    if token is None or not token.user.is_active:
        return None
    now = clock.utcnow()
    # Readers poll every few minutes: note the use at most once an hour rather than write on each poll.
    if token.last_used_at is None or now - token.last_used_at > timedelta(hours=1):
        token.last_used_at = now
        db.commit()
    return token.user
