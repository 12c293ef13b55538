"""Random tokens and their hashes: session ids, CSRF tokens, API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def sha256(value: str) -> str:
    """Hex SHA-256, used to store tokens so a database leak does not leak sessions."""
    return hashlib.sha256(value.encode()).hexdigest()


def sign(secret: str, value: str) -> str:
    """HMAC-SHA256 of a value under the app secret."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
